# tests/unit/plugin: test programs (check_PROGRAMS += ...)
