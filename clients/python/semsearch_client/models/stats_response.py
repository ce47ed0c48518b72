from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.kernel_name import KernelName
from ..types import UNSET, Unset
from typing import cast
import datetime

if TYPE_CHECKING:
  from ..models.context_counters import ContextCounters
  from ..models.refresh_stats import RefreshStats
  from ..models.scan_stats import ScanStats
  from ..models.shard_stats import ShardStats
  from ..models.skipped_keys import SkippedKeys





T = TypeVar("T", bound="StatsResponse")



@_attrs_define
class StatsResponse:
    """ What the index holds and how it got there.

        Attributes:
            version (str): The semsearch version serving (`semsearch --version`). Example: 0.1.0.
            git_sha (str): The git commit it was built from, or `unknown`.
            documents (int):
            dimension (int):
            index_bytes (int): Bytes of the vector matrix.
            int8_bytes (int): Bytes of the int8 copy of the vectors; 0 when the index scans f32.
            metadata_bytes (int): Bytes of ids, URLs, titles, texts and attributes.
            attribute_fields (int): Distinct attribute names that filters can use (`filter.fields`).
            attributes_dropped (int): Attributes of the documents served that the per-document bounds
                dropped (32 fields, 64-byte names, 256-byte values, 2 KiB in all).
            keys_scanned (int): Keys found by the last full load (valid or not).
            skipped (SkippedKeys): Keys skipped by the last full load, by reason (see the README: bad values are skipped).
            load_duration_ms (float):
            index_version (int):
            loaded_at (datetime.datetime): When this snapshot was published; RFC 3339, UTC.
            kernel (KernelName): The dot-product kernels semsearch has, on any CPU architecture.
            expired_pending (int): Documents past their Redis deadline, hidden from results until the
                index drops them.
            scan (ScanStats): How searches read the vectors (`SEMSEARCH_SCAN`) and what the int8
                scan cost since start. Answers are the same in every mode.
            refresh (RefreshStats): Live refresh since start.
            shard (None | ShardStats | Unset):
            contexts (ContextCounters | None | Unset):
     """

    version: str
    git_sha: str
    documents: int
    dimension: int
    index_bytes: int
    int8_bytes: int
    metadata_bytes: int
    attribute_fields: int
    attributes_dropped: int
    keys_scanned: int
    skipped: SkippedKeys
    load_duration_ms: float
    index_version: int
    loaded_at: datetime.datetime
    kernel: KernelName
    expired_pending: int
    scan: ScanStats
    refresh: RefreshStats
    shard: None | ShardStats | Unset = UNSET
    contexts: ContextCounters | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.context_counters import ContextCounters # noqa: PLC0415
        from ..models.refresh_stats import RefreshStats # noqa: PLC0415
        from ..models.scan_stats import ScanStats # noqa: PLC0415
        from ..models.shard_stats import ShardStats # noqa: PLC0415
        from ..models.skipped_keys import SkippedKeys # noqa: PLC0415
        version = self.version

        git_sha = self.git_sha

        documents = self.documents

        dimension = self.dimension

        index_bytes = self.index_bytes

        int8_bytes = self.int8_bytes

        metadata_bytes = self.metadata_bytes

        attribute_fields = self.attribute_fields

        attributes_dropped = self.attributes_dropped

        keys_scanned = self.keys_scanned

        skipped = self.skipped.to_dict()

        load_duration_ms = self.load_duration_ms

        index_version = self.index_version

        loaded_at = self.loaded_at.isoformat()

        kernel = self.kernel.value

        expired_pending = self.expired_pending

        scan = self.scan.to_dict()

        refresh = self.refresh.to_dict()

        shard: dict[str, Any] | None | Unset
        if isinstance(self.shard, Unset):
            shard = UNSET
        elif isinstance(self.shard, ShardStats):
            shard = self.shard.to_dict()
        else:
            shard = self.shard

        contexts: dict[str, Any] | None | Unset
        if isinstance(self.contexts, Unset):
            contexts = UNSET
        elif isinstance(self.contexts, ContextCounters):
            contexts = self.contexts.to_dict()
        else:
            contexts = self.contexts


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "version": version,
            "git_sha": git_sha,
            "documents": documents,
            "dimension": dimension,
            "index_bytes": index_bytes,
            "int8_bytes": int8_bytes,
            "metadata_bytes": metadata_bytes,
            "attribute_fields": attribute_fields,
            "attributes_dropped": attributes_dropped,
            "keys_scanned": keys_scanned,
            "skipped": skipped,
            "load_duration_ms": load_duration_ms,
            "index_version": index_version,
            "loaded_at": loaded_at,
            "kernel": kernel,
            "expired_pending": expired_pending,
            "scan": scan,
            "refresh": refresh,
        })
        if shard is not UNSET:
            field_dict["shard"] = shard
        if contexts is not UNSET:
            field_dict["contexts"] = contexts

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.context_counters import ContextCounters # noqa: PLC0415
        from ..models.refresh_stats import RefreshStats # noqa: PLC0415
        from ..models.scan_stats import ScanStats # noqa: PLC0415
        from ..models.shard_stats import ShardStats # noqa: PLC0415
        from ..models.skipped_keys import SkippedKeys # noqa: PLC0415
        d = dict(src_dict)
        version = d.pop("version")

        git_sha = d.pop("git_sha")

        documents = d.pop("documents")

        dimension = d.pop("dimension")

        index_bytes = d.pop("index_bytes")

        int8_bytes = d.pop("int8_bytes")

        metadata_bytes = d.pop("metadata_bytes")

        attribute_fields = d.pop("attribute_fields")

        attributes_dropped = d.pop("attributes_dropped")

        keys_scanned = d.pop("keys_scanned")

        skipped = SkippedKeys.from_dict(d.pop("skipped"))




        load_duration_ms = d.pop("load_duration_ms")

        index_version = d.pop("index_version")

        loaded_at = datetime.datetime.fromisoformat(d.pop("loaded_at"))




        kernel = KernelName(d.pop("kernel"))




        expired_pending = d.pop("expired_pending")

        scan = ScanStats.from_dict(d.pop("scan"))




        refresh = RefreshStats.from_dict(d.pop("refresh"))




        def _parse_shard(data: object) -> None | ShardStats | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                shard_type_0 = ShardStats.from_dict(data)



                return shard_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ShardStats | Unset, data)

        shard = _parse_shard(d.pop("shard", UNSET))


        def _parse_contexts(data: object) -> ContextCounters | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                contexts_type_0 = ContextCounters.from_dict(data)



                return contexts_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ContextCounters | None | Unset, data)

        contexts = _parse_contexts(d.pop("contexts", UNSET))


        stats_response = cls(
            version=version,
            git_sha=git_sha,
            documents=documents,
            dimension=dimension,
            index_bytes=index_bytes,
            int8_bytes=int8_bytes,
            metadata_bytes=metadata_bytes,
            attribute_fields=attribute_fields,
            attributes_dropped=attributes_dropped,
            keys_scanned=keys_scanned,
            skipped=skipped,
            load_duration_ms=load_duration_ms,
            index_version=index_version,
            loaded_at=loaded_at,
            kernel=kernel,
            expired_pending=expired_pending,
            scan=scan,
            refresh=refresh,
            shard=shard,
            contexts=contexts,
        )


        stats_response.additional_properties = d
        return stats_response

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
