"""Framework-free im2col / col2im toolkit for hand-written layers, and the Im2Col / Col2Im Ops (issue 4)."""
