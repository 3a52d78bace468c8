# tests/unit/common: test programs (check_PROGRAMS += ...)
