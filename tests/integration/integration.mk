# tests/integration: test programs (check_PROGRAMS += ...)
