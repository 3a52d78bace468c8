# tests/unit/agent: test programs (check_PROGRAMS += ...)
