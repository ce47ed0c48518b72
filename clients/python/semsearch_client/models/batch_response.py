from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.fewer_reason import FewerReason
from ..models.search_mode import SearchMode
from typing import cast

if TYPE_CHECKING:
  from ..models.context_ref import ContextRef
  from ..models.search_result import SearchResult





T = TypeVar("T", bound="BatchResponse")



@_attrs_define
class BatchResponse:
    """ Answers of a batch, in request order.

        Attributes:
            results (list[list[SearchResult]]): One list per query, in request order, each shaped like `/v1/search` results.
            fewer_results_reasons (list[FewerReason | None]): Per query, why fewer than k results came back (null when k
                came back).
            contexts (list[ContextRef | None]): Per query, where its results were cached (null when context writes are off).
            modes (list[SearchMode]): Per query, how its results were ranked.
            took_us (int): Server-side time, in microseconds.
            index_version (int):
     """

    results: list[list[SearchResult]]
    fewer_results_reasons: list[FewerReason | None]
    contexts: list[ContextRef | None]
    modes: list[SearchMode]
    took_us: int
    index_version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.context_ref import ContextRef # noqa: PLC0415
        from ..models.search_result import SearchResult # noqa: PLC0415
        results = []
        for results_item_data in self.results:
            results_item = []
            for results_item_item_data in results_item_data:
                results_item_item = results_item_item_data.to_dict()
                results_item.append(results_item_item)


            results.append(results_item)



        fewer_results_reasons = []
        for fewer_results_reasons_item_data in self.fewer_results_reasons:
            fewer_results_reasons_item: None | str
            if isinstance(fewer_results_reasons_item_data, FewerReason):
                fewer_results_reasons_item = fewer_results_reasons_item_data.value
            else:
                fewer_results_reasons_item = fewer_results_reasons_item_data
            fewer_results_reasons.append(fewer_results_reasons_item)



        contexts = []
        for contexts_item_data in self.contexts:
            contexts_item: dict[str, Any] | None
            if isinstance(contexts_item_data, ContextRef):
                contexts_item = contexts_item_data.to_dict()
            else:
                contexts_item = contexts_item_data
            contexts.append(contexts_item)



        modes = []
        for modes_item_data in self.modes:
            modes_item = modes_item_data.value
            modes.append(modes_item)



        took_us = self.took_us

        index_version = self.index_version


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "results": results,
            "fewer_results_reasons": fewer_results_reasons,
            "contexts": contexts,
            "modes": modes,
            "took_us": took_us,
            "index_version": index_version,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.context_ref import ContextRef # noqa: PLC0415
        from ..models.search_result import SearchResult # noqa: PLC0415
        d = dict(src_dict)
        results = []
        _results = d.pop("results")
        for results_item_data in (_results):
            results_item = []
            _results_item = results_item_data
            for results_item_item_data in (_results_item):
                results_item_item = SearchResult.from_dict(results_item_item_data)



                results_item.append(results_item_item)

            results.append(results_item)


        fewer_results_reasons = []
        _fewer_results_reasons = d.pop("fewer_results_reasons")
        for fewer_results_reasons_item_data in (_fewer_results_reasons):
            def _parse_fewer_results_reasons_item(data: object) -> FewerReason | None:
                if data is None:
                    return data
                try:
                    if not isinstance(data, str):
                        raise TypeError()
                    fewer_results_reasons_item_type_0 = FewerReason(data)



                    return fewer_results_reasons_item_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                return cast(FewerReason | None, data)

            fewer_results_reasons_item = _parse_fewer_results_reasons_item(fewer_results_reasons_item_data)

            fewer_results_reasons.append(fewer_results_reasons_item)


        contexts = []
        _contexts = d.pop("contexts")
        for contexts_item_data in (_contexts):
            def _parse_contexts_item(data: object) -> ContextRef | None:
                if data is None:
                    return data
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    contexts_item_type_0 = ContextRef.from_dict(data)



                    return contexts_item_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                return cast(ContextRef | None, data)

            contexts_item = _parse_contexts_item(contexts_item_data)

            contexts.append(contexts_item)


        modes = []
        _modes = d.pop("modes")
        for modes_item_data in (_modes):
            modes_item = SearchMode(modes_item_data)



            modes.append(modes_item)


        took_us = d.pop("took_us")

        index_version = d.pop("index_version")

        batch_response = cls(
            results=results,
            fewer_results_reasons=fewer_results_reasons,
            contexts=contexts,
            modes=modes,
            took_us=took_us,
            index_version=index_version,
        )


        batch_response.additional_properties = d
        return batch_response

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
