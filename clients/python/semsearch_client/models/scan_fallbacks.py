from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="ScanFallbacks")



@_attrs_define
class ScanFallbacks:
    """ Why an int8 query was answered by the f32 scan (same answer, slower).

        Attributes:
            query_out_of_range (int): The query vector is outside the range the int8 bound covers.
            large_k (int): k (plus expired rows) above 1/8 of the documents.
            too_many_candidates (int): Too many near-duplicate rows left undecided by the bounds.
     """

    query_out_of_range: int
    large_k: int
    too_many_candidates: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        query_out_of_range = self.query_out_of_range

        large_k = self.large_k

        too_many_candidates = self.too_many_candidates


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "query_out_of_range": query_out_of_range,
            "large_k": large_k,
            "too_many_candidates": too_many_candidates,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        query_out_of_range = d.pop("query_out_of_range")

        large_k = d.pop("large_k")

        too_many_candidates = d.pop("too_many_candidates")

        scan_fallbacks = cls(
            query_out_of_range=query_out_of_range,
            large_k=large_k,
            too_many_candidates=too_many_candidates,
        )


        scan_fallbacks.additional_properties = d
        return scan_fallbacks

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
