# tests/unit/engine: test programs (check_PROGRAMS += ...)
