from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.fewer_reason import FewerReason
from ..models.search_mode import SearchMode
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.context_ref import ContextRef
  from ..models.search_result import SearchResult





T = TypeVar("T", bound="SearchResponse")



@_attrs_define
class SearchResponse:
    """ Answer of `POST /v1/search`.

        Example:
            {'context': {'key': 'cache:context:3f2a', 'queued': True}, 'index_version': 7, 'results': [{'id':
                'https://example.org/a', 'score': 0.83, 'title': 'A', 'url': 'https://example.org/a'}], 'took_us': 412}

        Attributes:
            results (list[SearchResult]):
            mode (SearchMode): How a query is ranked. A `text` query is `hybrid` unless it says
                otherwise; `vector` and `id` queries can only be `vector` (they carry no
                words to match).
            took_us (int): Server-side time, in microseconds.
            index_version (int): The snapshot that answered; changes on every reload or update.
            fewer_results_reason (FewerReason | Unset): Why fewer than k results came back.
            context (ContextRef | Unset): Where the results were cached for the chatbot.
     """

    results: list[SearchResult]
    mode: SearchMode
    took_us: int
    index_version: int
    fewer_results_reason: FewerReason | Unset = UNSET
    context: ContextRef | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.context_ref import ContextRef # noqa: PLC0415
        from ..models.search_result import SearchResult # noqa: PLC0415
        results = []
        for results_item_data in self.results:
            results_item = results_item_data.to_dict()
            results.append(results_item)



        mode = self.mode.value

        took_us = self.took_us

        index_version = self.index_version

        fewer_results_reason: str | Unset = UNSET
        if not isinstance(self.fewer_results_reason, Unset):
            fewer_results_reason = self.fewer_results_reason.value


        context: dict[str, Any] | Unset = UNSET
        if not isinstance(self.context, Unset):
            context = self.context.to_dict()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "results": results,
            "mode": mode,
            "took_us": took_us,
            "index_version": index_version,
        })
        if fewer_results_reason is not UNSET:
            field_dict["fewer_results_reason"] = fewer_results_reason
        if context is not UNSET:
            field_dict["context"] = context

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.context_ref import ContextRef # noqa: PLC0415
        from ..models.search_result import SearchResult # noqa: PLC0415
        d = dict(src_dict)
        results = []
        _results = d.pop("results")
        for results_item_data in (_results):
            results_item = SearchResult.from_dict(results_item_data)



            results.append(results_item)


        mode = SearchMode(d.pop("mode"))




        took_us = d.pop("took_us")

        index_version = d.pop("index_version")

        _fewer_results_reason = d.pop("fewer_results_reason", UNSET)
        fewer_results_reason: FewerReason | Unset
        if isinstance(_fewer_results_reason,  Unset):
            fewer_results_reason = UNSET
        else:
            fewer_results_reason = FewerReason(_fewer_results_reason)




        _context = d.pop("context", UNSET)
        context: ContextRef | Unset
        if isinstance(_context,  Unset):
            context = UNSET
        else:
            context = ContextRef.from_dict(_context)




        search_response = cls(
            results=results,
            mode=mode,
            took_us=took_us,
            index_version=index_version,
            fewer_results_reason=fewer_results_reason,
            context=context,
        )


        search_response.additional_properties = d
        return search_response

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
