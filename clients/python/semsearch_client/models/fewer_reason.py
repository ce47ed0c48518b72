from enum import StrEnum

class FewerReason(StrEnum):
    FILTER = "filter"
    INDEX_SMALLER_THAN_K = "index_smaller_than_k"
    MIN_SCORE = "min_score"
    NO_MORE_MATCHES = "no_more_matches"

    def __str__(self) -> str:
        return str(self.value)
