from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.feed_state import FeedState
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.reload_info import ReloadInfo





T = TypeVar("T", bound="RefreshStats")



@_attrs_define
class RefreshStats:
    """ Live refresh since start.

        Attributes:
            reloads (int):
            reload_failures (int):
            docs_added (int): Documents changed by per-key updates since start.
            docs_updated (int):
            docs_removed (int):
            change_feed (FeedState): Where the change feed stands: `tracking` when Redis pushes changes as they
                happen; otherwise only the periodic reconcile notices them.
            redis_empty (bool): Redis holds no embeddings; the last index keeps serving.
            last_reload (None | ReloadInfo | Unset):
     """

    reloads: int
    reload_failures: int
    docs_added: int
    docs_updated: int
    docs_removed: int
    change_feed: FeedState
    redis_empty: bool
    last_reload: None | ReloadInfo | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.reload_info import ReloadInfo # noqa: PLC0415
        reloads = self.reloads

        reload_failures = self.reload_failures

        docs_added = self.docs_added

        docs_updated = self.docs_updated

        docs_removed = self.docs_removed

        change_feed = self.change_feed.value

        redis_empty = self.redis_empty

        last_reload: dict[str, Any] | None | Unset
        if isinstance(self.last_reload, Unset):
            last_reload = UNSET
        elif isinstance(self.last_reload, ReloadInfo):
            last_reload = self.last_reload.to_dict()
        else:
            last_reload = self.last_reload


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "reloads": reloads,
            "reload_failures": reload_failures,
            "docs_added": docs_added,
            "docs_updated": docs_updated,
            "docs_removed": docs_removed,
            "change_feed": change_feed,
            "redis_empty": redis_empty,
        })
        if last_reload is not UNSET:
            field_dict["last_reload"] = last_reload

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.reload_info import ReloadInfo # noqa: PLC0415
        d = dict(src_dict)
        reloads = d.pop("reloads")

        reload_failures = d.pop("reload_failures")

        docs_added = d.pop("docs_added")

        docs_updated = d.pop("docs_updated")

        docs_removed = d.pop("docs_removed")

        change_feed = FeedState(d.pop("change_feed"))




        redis_empty = d.pop("redis_empty")

        def _parse_last_reload(data: object) -> None | ReloadInfo | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                last_reload_type_0 = ReloadInfo.from_dict(data)



                return last_reload_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ReloadInfo | Unset, data)

        last_reload = _parse_last_reload(d.pop("last_reload", UNSET))


        refresh_stats = cls(
            reloads=reloads,
            reload_failures=reload_failures,
            docs_added=docs_added,
            docs_updated=docs_updated,
            docs_removed=docs_removed,
            change_feed=change_feed,
            redis_empty=redis_empty,
            last_reload=last_reload,
        )


        refresh_stats.additional_properties = d
        return refresh_stats

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
