# tests/unit/wire: test programs (check_PROGRAMS += ...)
