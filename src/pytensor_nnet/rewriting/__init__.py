"""Graph rewrites, registered in PyTensor's databases under names users can exclude."""
