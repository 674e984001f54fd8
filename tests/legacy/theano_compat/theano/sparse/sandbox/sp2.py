from pytensor_nnet.sparse import (  # noqa: F401
    Binomial,
    Multinomial,
    Poisson,
    csc_dbinomial,
    csc_fbinomial,
    csr_dbinomial,
    csr_fbinomial,
    multinomial,
    poisson,
)
