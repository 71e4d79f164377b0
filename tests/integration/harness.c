/* tests/integration/harness.c: being written */
