from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="SkippedKeys")



@_attrs_define
class SkippedKeys:
    """ Keys skipped by the last full load, by reason (see the README: bad values are skipped).

        Attributes:
            wrong_type (int):
            invalid_json (int):
            non_finite (int):
            zero_vector (int):
            wrong_dimension (int):
            vanished (int):
            invalid_key (int):
     """

    wrong_type: int
    invalid_json: int
    non_finite: int
    zero_vector: int
    wrong_dimension: int
    vanished: int
    invalid_key: int





    def to_dict(self) -> dict[str, Any]:
        wrong_type = self.wrong_type

        invalid_json = self.invalid_json

        non_finite = self.non_finite

        zero_vector = self.zero_vector

        wrong_dimension = self.wrong_dimension

        vanished = self.vanished

        invalid_key = self.invalid_key


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "wrong_type": wrong_type,
            "invalid_json": invalid_json,
            "non_finite": non_finite,
            "zero_vector": zero_vector,
            "wrong_dimension": wrong_dimension,
            "vanished": vanished,
            "invalid_key": invalid_key,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        wrong_type = d.pop("wrong_type")

        invalid_json = d.pop("invalid_json")

        non_finite = d.pop("non_finite")

        zero_vector = d.pop("zero_vector")

        wrong_dimension = d.pop("wrong_dimension")

        vanished = d.pop("vanished")

        invalid_key = d.pop("invalid_key")

        skipped_keys = cls(
            wrong_type=wrong_type,
            invalid_json=invalid_json,
            non_finite=non_finite,
            zero_vector=zero_vector,
            wrong_dimension=wrong_dimension,
            vanished=vanished,
            invalid_key=invalid_key,
        )

        return skipped_keys

