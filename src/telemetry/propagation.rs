//! W3C Trace Context (`traceparent`, `tracestate`): a request joins its
//! caller's trace, the router hands its trace to the shards, and deferred
//! work (the context writes) names the request it came from.
//!
//! Every function here is a no-op until `super::init_service` has started an
//! exporter ([`enabled`]): without one, no header is read or written and no
//! OpenTelemetry object is made per request.
//!
//! A caller's header is checked by [`well_formed_traceparent`] before the
//! OpenTelemetry propagator reads it: the propagator accepts trace ids of
//! the wrong length (it parses them as numbers), which the W3C rules refuse.
//! A refused header starts a new trace; it never fails a request.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, Method, StatusCode};
use tracing::Span;

/// The W3C header carrying the caller's trace id, span id and flags.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header carrying vendors' trace state, passed on as received.
pub const TRACESTATE: &str = "tracestate";

/// Set once, when an exporter starts; never cleared.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[cfg(feature = "otel")]
pub(super) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are exported, so trace context is worth reading and sending.
pub fn enabled() -> bool {
    cfg!(feature = "otel") && ENABLED.load(Ordering::Relaxed)
}

/// Whether `value` is a `traceparent` a receiver may use (W3C Trace Context
/// level 1, section 3.2): `version-traceid-parentid-flags`, lowercase hex
/// of 2, 32, 16 and 2 digits; version `ff` is invalid, version `00` has
/// exactly these four fields (a later version may add fields after them);
/// neither id is all zeros.
pub fn well_formed_traceparent(value: &str) -> bool {
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let not_zero = |s: &str| s.bytes().any(|b| b != b'0');
    let mut fields = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let more = fields.next().is_some();
    hex(version, 2)
        && version != "ff"
        && !(version == "00" && more)
        && hex(trace_id, 32)
        && not_zero(trace_id)
        && hex(parent_id, 16)
        && not_zero(parent_id)
        && hex(flags, 2)
}

/// Makes `span` (a request's span, its `otel.*` fields declared empty) the
/// server span of `method route`, a child of the caller's span when the
/// request carries one well-formed `traceparent` (and its `tracestate`);
/// else it starts a trace.
pub fn join_caller(span: &Span, method: &Method, route: &str, headers: &HeaderMap) {
    if !enabled() {
        return;
    }
    span.record("otel.name", format!("{method} {route}"));
    span.record("otel.kind", "server");
    #[cfg(feature = "otel")]
    {
        use opentelemetry::propagation::TextMapPropagator;
        use tracing_opentelemetry::OpenTelemetrySpanExt;

        let mut values = headers.get_all(TRACEPARENT).iter();
        let (Some(one), None) = (values.next(), values.next()) else {
            return;
        };
        if one.to_str().is_ok_and(well_formed_traceparent) {
            let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
                .extract(&opentelemetry_http::HeaderExtractor(headers));
            let _ = span.set_parent(parent);
        }
    }
    #[cfg(not(feature = "otel"))]
    let _ = headers;
}

/// Records a request's answer on its span: the status, and an error status
/// for a 5xx (a 4xx is the caller's mistake, not the server's).
pub fn record_status(span: &Span, status: StatusCode) {
    if !enabled() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// Adds `span`'s trace context to an outgoing request's headers, so the
/// callee's spans join this trace (the router's calls to its shards).
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    #[cfg(feature = "otel")]
    {
        use opentelemetry::propagation::TextMapPropagator;
        use tracing_opentelemetry::OpenTelemetrySpanExt;

        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(&span.context(), &mut opentelemetry_http::HeaderInjector(headers));
    }
    #[cfg(not(feature = "otel"))]
    let _ = (span, headers);
}

/// The trace a piece of deferred work belongs to (a queued context write):
/// taken where the work is asked for, adopted where it is done. Holds only
/// the ids, not the request's span, so the request's span ends when the
/// request does. Empty when traces are off.
#[derive(Debug, Clone, Default)]
pub struct TraceOrigin {
    #[cfg(feature = "otel")]
    context: Option<opentelemetry::Context>,
}

impl TraceOrigin {
    /// The current span's trace, when traces are on.
    pub fn current() -> Self {
        #[cfg(feature = "otel")]
        if enabled() {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            return Self { context: Some(Span::current().context()) };
        }
        Self::default()
    }

    /// Makes `span` (not yet entered) a child of the origin's span.
    pub fn adopt(&self, span: &Span) {
        #[cfg(feature = "otel")]
        if let Some(context) = &self.context {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let _ = span.set_parent(context.clone());
        }
        #[cfg(not(feature = "otel"))]
        let _ = span;
    }

    /// Links `span` (not yet entered) to the origin's span: work done for
    /// several requests at once has one parent and a link to each other one.
    pub fn link(&self, span: &Span) {
        #[cfg(feature = "otel")]
        if let Some(context) = &self.context {
            use opentelemetry::trace::TraceContextExt;
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            span.add_link(context.span().span_context().clone());
        }
        #[cfg(not(feature = "otel"))]
        let _ = span;
    }
}

#[cfg(test)]
mod tests {
    use super::well_formed_traceparent as ok;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn the_w3c_example_and_an_unsampled_one_are_well_formed() {
        assert!(ok(&format!("00-{TRACE}-{SPAN}-01")));
        assert!(ok(&format!("00-{TRACE}-{SPAN}-00")));
    }

    #[test]
    fn version_ff_is_refused_and_a_later_version_may_add_fields() {
        assert!(!ok(&format!("ff-{TRACE}-{SPAN}-01")));
        assert!(ok(&format!("01-{TRACE}-{SPAN}-01")));
        assert!(ok(&format!("cc-{TRACE}-{SPAN}-01-what-comes-next")));
        assert!(!ok(&format!("00-{TRACE}-{SPAN}-01-extra")), "version 00 has exactly four fields");
    }

    #[test]
    fn all_zero_ids_are_refused() {
        assert!(!ok(&format!("00-{}-{SPAN}-01", "0".repeat(32))));
        assert!(!ok(&format!("00-{TRACE}-{}-01", "0".repeat(16))));
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert!(!ok(&format!("00-{}-{SPAN}-01", &TRACE[1..])), "31-digit trace id");
        assert!(!ok(&format!("00-{TRACE}0-{SPAN}-01")), "33-digit trace id");
        assert!(!ok(&format!("00-{TRACE}-{}-01", &SPAN[1..])), "15-digit span id");
        assert!(!ok(&format!("0-{TRACE}-{SPAN}-01")));
        assert!(!ok(&format!("00-{TRACE}-{SPAN}-1")));
        assert!(!ok(&format!("00-{TRACE}-{SPAN}")));
        assert!(!ok(""));
    }

    #[test]
    fn uppercase_hex_and_other_characters_are_refused() {
        assert!(!ok(&format!("00-{}-{SPAN}-01", TRACE.to_uppercase())));
        assert!(!ok(&format!("00-{TRACE}-{}-01", SPAN.to_uppercase())));
        assert!(!ok(&format!("00-{TRACE}-{SPAN}-0A")));
        assert!(!ok(&format!("00-{TRACE}-{SPAN}-0g")));
        assert!(!ok(&format!(" 00-{TRACE}-{SPAN}-01")));
        assert!(!ok(&format!("00_{TRACE}-{SPAN}-01")));
    }
}
