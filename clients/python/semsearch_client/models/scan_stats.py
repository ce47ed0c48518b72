from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.scan_fallbacks import ScanFallbacks





T = TypeVar("T", bound="ScanStats")



@_attrs_define
class ScanStats:
    """ How searches read the vectors (`SEMSEARCH_SCAN`) and what the int8
    scan cost since start. Answers are the same in every mode.

        Attributes:
            mode (str): `SEMSEARCH_SCAN` as configured: `auto`, `f32` or `int8`. Example: auto.
            active (str): What the serving index is scanned with: `int8` (int8 copy, bounds,
                exact f32 rescoring) or `f32`. Example: int8.
            int8_kernel (str): The int8 dot-product kernel chosen for this CPU. Example: avx512vnni.
            f32_queries (int): Queries answered by an index scanned in f32.
            int8_queries (int): Queries answered by an index with an int8 copy (by either path).
            rescored_rows (int): Rows those queries rescored in f32 (every row for a fallback).
            f32_fallbacks (ScanFallbacks): Why an int8 query was answered by the f32 scan (same answer, slower).
     """

    mode: str
    active: str
    int8_kernel: str
    f32_queries: int
    int8_queries: int
    rescored_rows: int
    f32_fallbacks: ScanFallbacks
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.scan_fallbacks import ScanFallbacks # noqa: PLC0415
        mode = self.mode

        active = self.active

        int8_kernel = self.int8_kernel

        f32_queries = self.f32_queries

        int8_queries = self.int8_queries

        rescored_rows = self.rescored_rows

        f32_fallbacks = self.f32_fallbacks.to_dict()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "mode": mode,
            "active": active,
            "int8_kernel": int8_kernel,
            "f32_queries": f32_queries,
            "int8_queries": int8_queries,
            "rescored_rows": rescored_rows,
            "f32_fallbacks": f32_fallbacks,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.scan_fallbacks import ScanFallbacks # noqa: PLC0415
        d = dict(src_dict)
        mode = d.pop("mode")

        active = d.pop("active")

        int8_kernel = d.pop("int8_kernel")

        f32_queries = d.pop("f32_queries")

        int8_queries = d.pop("int8_queries")

        rescored_rows = d.pop("rescored_rows")

        f32_fallbacks = ScanFallbacks.from_dict(d.pop("f32_fallbacks"))




        scan_stats = cls(
            mode=mode,
            active=active,
            int8_kernel=int8_kernel,
            f32_queries=f32_queries,
            int8_queries=int8_queries,
            rescored_rows=rescored_rows,
            f32_fallbacks=f32_fallbacks,
        )


        scan_stats.additional_properties = d
        return scan_stats

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
