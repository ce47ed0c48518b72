from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.id_query_mode import IdQueryMode
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.search_filter import SearchFilter
  from ..models.snippet_options import SnippetOptions





T = TypeVar("T", bound="IdQuery")



@_attrs_define
class IdQuery:
    """ "More like this": a search by a stored document's vector, the document left out.

        Attributes:
            id (str): A document id (for the chatbot, the article URL): find documents like it. Its stored vector is the
                query and it is left out of the results.
            vector (None | Unset): Not with `id`: send exactly one of `vector`, `text` and `id` (null counts as absent).
            text (None | Unset): Not with `id`: send exactly one of `vector`, `text` and `id` (null counts as absent).
            k (int | Unset): How many results; 1 to the server's SEMSEARCH_MAX_K (default 1000, the maximum stated here).
                Default: 3.
            min_score (float | None | Unset): Drop results scoring below this. Default: none.
            with_text (bool | Unset): Include each article's text (the bulk of the response). Default: true.
            context_key (None | str | Unset): Suffix of the `cache:context:<key>` the results are stored under (1 to 256
                printable ASCII bytes, no spaces). Default: a hash of the query and its options.
            filter_ (None | SearchFilter | Unset): Search only documents matching this. Default: every document.
            mode (IdQueryMode | Unset): Only `vector`: this query has no words to match (422 `mode_needs_text` otherwise).
            hybrid (None | Unset): Only for text queries.
            snippet (None | SnippetOptions | Unset): Give each hit the passage of its text that best matches the question
                (the text's opening for a query without words). Default: none.
     """

    id: str
    vector: None | Unset = UNSET
    text: None | Unset = UNSET
    k: int | Unset = UNSET
    min_score: float | None | Unset = UNSET
    with_text: bool | Unset = UNSET
    context_key: None | str | Unset = UNSET
    filter_: None | SearchFilter | Unset = UNSET
    mode: IdQueryMode | Unset = UNSET
    hybrid: None | Unset = UNSET
    snippet: None | SnippetOptions | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.search_filter import SearchFilter # noqa: PLC0415
        from ..models.snippet_options import SnippetOptions # noqa: PLC0415
        id = self.id

        vector = self.vector

        text = self.text

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

        mode: str | Unset = UNSET
        if not isinstance(self.mode, Unset):
            mode = self.mode.value


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
            "id": id,
        })
        if vector is not UNSET:
            field_dict["vector"] = vector
        if text is not UNSET:
            field_dict["text"] = text
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
        from ..models.search_filter import SearchFilter # noqa: PLC0415
        from ..models.snippet_options import SnippetOptions # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        vector = d.pop("vector", UNSET)

        text = d.pop("text", UNSET)

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


        _mode = d.pop("mode", UNSET)
        mode: IdQueryMode | Unset
        if isinstance(_mode,  Unset):
            mode = UNSET
        else:
            mode = IdQueryMode(_mode)




        hybrid = d.pop("hybrid", UNSET)

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


        id_query = cls(
            id=id,
            vector=vector,
            text=text,
            k=k,
            min_score=min_score,
            with_text=with_text,
            context_key=context_key,
            filter_=filter_,
            mode=mode,
            hybrid=hybrid,
            snippet=snippet,
        )

        return id_query

