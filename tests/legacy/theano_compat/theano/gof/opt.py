def check_stack_trace(f_or_fgraph, ops_to_check="last", bug_print="raise"):
    """PyTensor keeps stack traces of rewritten nodes itself; the legacy rewriter checks have no
    counterpart (the tests that call this are in the skip list)."""
    raise NotImplementedError("check_stack_trace: legacy rewriter internals")
