# src/wire: the sync protocol (frames, codec, limits). No I/O.
