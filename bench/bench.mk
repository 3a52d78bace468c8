# bench: test programs (check_PROGRAMS += ...)
