"""``jax_funcify`` registrations (imported only when JAX is installed)."""
