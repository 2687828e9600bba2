"""Benchmarks: HumanEval(+), MBPP(+), CRUXEval-I/O, HumanEvalFix and iterative self-refinement."""
