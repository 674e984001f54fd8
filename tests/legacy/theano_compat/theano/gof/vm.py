from pytensor.link.vm import VMLinker as VM_Linker  # noqa: F401
