"""Workarounds that reach into torch's internals, kept in one place so that a torch upgrade
has one package to check (tests/test_torchpatch.py fails loudly, naming the internal, when
one of them changes). Each makes a trace on the meta device cheaper without changing what
it computes:

- `nodynamo.no_dynamo_import`: Python meta kernels run without importing torch._dynamo
  (pre-fills the `__dynamo_disable` cache of `torch._disable_dynamo` wrappers);
- `nosympy.no_sympy_import`: torch's shape helpers answer plain ints and bools without
  importing sympy (stand-ins for `torch.fx.experimental.symbolic_shapes` and `sympy`);
- `flopformulas.flop_registry`: torch's flop formulas without importing triton;
- `metacache.MetaOpCache`: a meta kernel's result reused for the same op and argument
  description (reads the op's schema to know which ops are pure).
"""
