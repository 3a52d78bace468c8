# tests/unit/engine: the sync engine's unit, worked-example and model tests.
# MS_ENGINE_SEEDS=N overrides the randomized model test's seed count.
check_PROGRAMS += tests/unit/engine/engine_test
tests_unit_engine_engine_test_SOURCES = \
	tests/unit/engine/sim.cc tests/unit/engine/sim.h \
	tests/unit/engine/building_blocks_test.cc \
	tests/unit/engine/compare_agent_test.cc \
	tests/unit/engine/session_test.cc \
	tests/unit/engine/worked_example_test.cc \
	tests/unit/engine/model_test.cc
tests_unit_engine_engine_test_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_engine_engine_test_LDADD = src/sync_agent/engine/libmsengine.la \
	src/common/libmscommon.la $(GTEST_LIBS)
