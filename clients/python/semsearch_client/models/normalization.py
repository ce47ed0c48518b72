from enum import StrEnum

class Normalization(StrEnum):
    CHATBOT = "chatbot"
    NONE = "none"

    def __str__(self) -> str:
        return str(self.value)
