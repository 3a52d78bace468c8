# tests/unit/server: test programs (check_PROGRAMS += ...)
