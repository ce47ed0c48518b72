""" Contains all the data models used in inputs/outputs """

from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .context_counters import ContextCounters
from .context_ref import ContextRef
from .document_response import DocumentResponse
from .embed_request import EmbedRequest
from .embed_response import EmbedResponse
from .feed_state import FeedState
from .fewer_reason import FewerReason
from .get_openapi_response_200_type_1 import GetOpenapiResponse200Type1
from .health import Health
from .health_status import HealthStatus
from .hybrid_options import HybridOptions
from .id_query import IdQuery
from .id_query_mode import IdQueryMode
from .item_problem import ItemProblem
from .kernel_name import KernelName
from .normalization import Normalization
from .problem import Problem
from .problem_code import ProblemCode
from .ready import Ready
from .ready_status import ReadyStatus
from .refresh_stats import RefreshStats
from .reload_info import ReloadInfo
from .reload_reason import ReloadReason
from .scan_fallbacks import ScanFallbacks
from .scan_stats import ScanStats
from .search_filter import SearchFilter
from .search_filter_fields_type_0 import SearchFilterFieldsType0
from .search_mode import SearchMode
from .search_response import SearchResponse
from .search_result import SearchResult
from .shard_stats import ShardStats
from .skipped_keys import SkippedKeys
from .snippet import Snippet
from .snippet_options import SnippetOptions
from .stats_response import StatsResponse
from .text_query import TextQuery
from .vector_query import VectorQuery
from .vector_query_mode import VectorQueryMode

__all__ = (
    "BatchRequest",
    "BatchResponse",
    "ContextCounters",
    "ContextRef",
    "DocumentResponse",
    "EmbedRequest",
    "EmbedResponse",
    "FeedState",
    "FewerReason",
    "GetOpenapiResponse200Type1",
    "Health",
    "HealthStatus",
    "HybridOptions",
    "IdQuery",
    "IdQueryMode",
    "ItemProblem",
    "KernelName",
    "Normalization",
    "Problem",
    "ProblemCode",
    "Ready",
    "ReadyStatus",
    "RefreshStats",
    "ReloadInfo",
    "ReloadReason",
    "ScanFallbacks",
    "ScanStats",
    "SearchFilter",
    "SearchFilterFieldsType0",
    "SearchMode",
    "SearchResponse",
    "SearchResult",
    "ShardStats",
    "SkippedKeys",
    "Snippet",
    "SnippetOptions",
    "StatsResponse",
    "TextQuery",
    "VectorQuery",
    "VectorQueryMode",
)
