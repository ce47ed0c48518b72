from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.search_mode import SearchMode
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.hybrid_options import HybridOptions
  from ..models.search_filter import SearchFilter
  from ..models.snippet_options import SnippetOptions





T = TypeVar("T", bound="TextQuery")



@_attrs_define
class TextQuery:
    """ A search by question text, embedded server-side.

        Attributes:
            text (str): Question text, embedded server-side by the configured provider (422 `text_search_disabled` when none
                is). At most 8 KiB of UTF-8 (422 `text_too_long`): 2048 characters always fit.
            vector (None | Unset): Not with `text`: send exactly one of `vector`, `text` and `id` (null counts as absent).
            id (None | Unset): Not with `text`: send exactly one of `vector`, `text` and `id` (null counts as absent).
            k (int | Unset): How many results; 1 to the server's SEMSEARCH_MAX_K (default 1000, the maximum stated here).
                Default: 3.
            min_score (float | None | Unset): Drop results scoring below this. Default: none.
            with_text (bool | Unset): Include each article's text (the bulk of the response). Default: true.
            context_key (None | str | Unset): Suffix of the `cache:context:<key>` the results are stored under (1 to 256
                printable ASCII bytes, no spaces). Default: a hash of the query and its options.
            filter_ (None | SearchFilter | Unset): Search only documents matching this. Default: every document.
            mode (None | SearchMode | Unset): How the question is ranked. Default: `hybrid`.
            hybrid (HybridOptions | None | Unset): Tuning of `hybrid` ranking. Default: the per-question weight.
            snippet (None | SnippetOptions | Unset): Give each hit the passage of its text that best matches the question
                (the text's opening for a query without words). Default: none.
     """

    text: str
    vector: None | Unset = UNSET
    id: None | Unset = UNSET
    k: int | Unset = UNSET
    min_score: float | None | Unset = UNSET
    with_text: bool | Unset = UNSET
    context_key: None | str | Unset = UNSET
    filter_: None | SearchFilter | Unset = UNSET
    mode: None | SearchMode | Unset = UNSET
    hybrid: HybridOptions | None | Unset = UNSET
    snippet: None | SnippetOptions | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.hybrid_options import HybridOptions # noqa: PLC0415
        from ..models.search_filter import SearchFilter # noqa: PLC0415
        from ..models.snippet_options import SnippetOptions # noqa: PLC0415
        text = self.text

        vector = self.vector

        id = self.id

        k = self.k

        min_score: float | None | Unset
        if isinstance(self.min_score, Unset):
            min_score = UNSET
        else:
            min_score = self.min_score

        with_text = self.with_text

        context_key: None | str | Unset
        if isinstance(self.context_key, Unset):
            context_key = UNSET
        else:
            context_key = self.context_key

        filter_: dict[str, Any] | None | Unset
        if isinstance(self.filter_, Unset):
            filter_ = UNSET
        elif isinstance(self.filter_, SearchFilter):
            filter_ = self.filter_.to_dict()
        else:
            filter_ = self.filter_

        mode: None | str | Unset
        if isinstance(self.mode, Unset):
            mode = UNSET
        elif isinstance(self.mode, SearchMode):
            mode = self.mode.value
        else:
            mode = self.mode

        hybrid: dict[str, Any] | None | Unset
        if isinstance(self.hybrid, Unset):
            hybrid = UNSET
        elif isinstance(self.hybrid, HybridOptions):
            hybrid = self.hybrid.to_dict()
        else:
            hybrid = self.hybrid

        snippet: dict[str, Any] | None | Unset
        if isinstance(self.snippet, Unset):
            snippet = UNSET
        elif isinstance(self.snippet, SnippetOptions):
            snippet = self.snippet.to_dict()
        else:
            snippet = self.snippet


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "text": text,
        })
        if vector is not UNSET:
            field_dict["vector"] = vector
        if id is not UNSET:
            field_dict["id"] = id
        if k is not UNSET:
            field_dict["k"] = k
        if min_score is not UNSET:
            field_dict["min_score"] = min_score
        if with_text is not UNSET:
            field_dict["with_text"] = with_text
        if context_key is not UNSET:
            field_dict["context_key"] = context_key
        if filter_ is not UNSET:
            field_dict["filter"] = filter_
        if mode is not UNSET:
            field_dict["mode"] = mode
        if hybrid is not UNSET:
            field_dict["hybrid"] = hybrid
        if snippet is not UNSET:
            field_dict["snippet"] = snippet

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.hybrid_options import HybridOptions # noqa: PLC0415
        from ..models.search_filter import SearchFilter # noqa: PLC0415
        from ..models.snippet_options import SnippetOptions # noqa: PLC0415
        d = dict(src_dict)
        text = d.pop("text")

        vector = d.pop("vector", UNSET)

        id = d.pop("id", UNSET)

        k = d.pop("k", UNSET)

        def _parse_min_score(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        min_score = _parse_min_score(d.pop("min_score", UNSET))


        with_text = d.pop("with_text", UNSET)

        def _parse_context_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        context_key = _parse_context_key(d.pop("context_key", UNSET))


        def _parse_filter_(data: object) -> None | SearchFilter | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                filter_type_0 = SearchFilter.from_dict(data)



                return filter_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SearchFilter | Unset, data)

        filter_ = _parse_filter_(d.pop("filter", UNSET))


        def _parse_mode(data: object) -> None | SearchMode | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                mode_type_0 = SearchMode(data)



                return mode_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SearchMode | Unset, data)

        mode = _parse_mode(d.pop("mode", UNSET))


        def _parse_hybrid(data: object) -> HybridOptions | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                hybrid_type_0 = HybridOptions.from_dict(data)



                return hybrid_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(HybridOptions | None | Unset, data)

        hybrid = _parse_hybrid(d.pop("hybrid", UNSET))


        def _parse_snippet(data: object) -> None | SnippetOptions | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                snippet_type_0 = SnippetOptions.from_dict(data)



                return snippet_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SnippetOptions | Unset, data)

        snippet = _parse_snippet(d.pop("snippet", UNSET))


        text_query = cls(
            text=text,
            vector=vector,
            id=id,
            k=k,
            min_score=min_score,
            with_text=with_text,
            context_key=context_key,
            filter_=filter_,
            mode=mode,
            hybrid=hybrid,
            snippet=snippet,
        )

        return text_query

