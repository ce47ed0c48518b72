from enum import StrEnum

class KernelName(StrEnum):
    AVX2 = "avx2"
    AVX512 = "avx512"
    NEON = "neon"
    SCALAR = "scalar"

    def __str__(self) -> str:
        return str(self.value)
