from enum import StrEnum

class ReloadReason(StrEnum):
    ADMIN = "admin"
    CHANGE_FEED_REARMED = "change_feed_rearmed"
    EMBEDDINGS_REAPPEARED = "embeddings_reappeared"
    KEY_SET_CHANGED = "key_set_changed"
    QUICK_KEY_CHANGED = "quick_key_changed"
    QUICK_KEY_EXPIRED = "quick_key_expired"
    RETRY = "retry"
    STARTUP = "startup"

    def __str__(self) -> str:
        return str(self.value)
