from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="HybridOptions")



@_attrs_define
class HybridOptions:
    """ `hybrid` of a search.

        Attributes:
            vector_weight (float | None | Unset): The vector ranking's weight in the fused score, in (0, 1]; the rest
                goes to the lexical ranking. Default: chosen per question from how
                well the embedding model reads it (1 for a question it understands,
                0.4 for one it does not).
     """

    vector_weight: float | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        vector_weight: float | None | Unset
        if isinstance(self.vector_weight, Unset):
            vector_weight = UNSET
        else:
            vector_weight = self.vector_weight


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if vector_weight is not UNSET:
            field_dict["vector_weight"] = vector_weight

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_vector_weight(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        vector_weight = _parse_vector_weight(d.pop("vector_weight", UNSET))


        hybrid_options = cls(
            vector_weight=vector_weight,
        )

        return hybrid_options

