//! [`ProblemHeads`]: hyper's own HTTP/1 error answers as problem+json.
//!
//! hyper answers a request it cannot parse (bad request line or header:
//! 400; a URI over its limit: 414; a head over its buffer: 431) by itself,
//! before any service runs, with an empty body, and offers no hook to change
//! it. Every error the service sends is `application/problem+json`
//! (`crate::problem`), so this I/O wrapper recognises those answers on
//! their way out and writes our problem instead.
//!
//! Recognised, and only that: a write that begins a response with status
//! 400, 414 or 431, is one whole head (ends with the blank line) and
//! carries `content-length: 0` and no `content-type`. None of our own
//! answers looks like that (every `ApiError` has a body and a type), and
//! hyper closes the connection after such an answer, so the replacement
//! says `connection: close`. HTTP/2 connections are left alone (their
//! errors are frames, not heads).

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::problem::ApiError;

/// The HTTP/2 connection preface's first bytes: after them, nothing is rewritten.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// An I/O stream whose hyper-made 400/414/431 heads are replaced by problem+json answers.
#[derive(Debug)]
pub struct ProblemHeads<T> {
    inner: T,
    /// The replacement still being written, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
    /// Bytes of the connection read so far, up to the preface's length.
    first_bytes: Vec<u8>,
    h2: bool,
}

impl<T> ProblemHeads<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, pending: None, first_bytes: Vec::new(), h2: false }
    }
}

/// The problem+json response replacing hyper's empty `head`, or `None` when
/// `head` is not one of hyper's error answers.
pub fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let error = match head.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => ApiError::BadRequest,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => ApiError::UriTooLong,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => ApiError::HeadersTooLarge,
        _ => return None,
    };
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if !has(b"\r\ncontent-length: 0\r\n") || has(b"\r\ncontent-type:") {
        return None;
    }
    let status = error.status();
    let body = serde_json::to_vec(&error.problem()).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\nserver: {}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        crate::problem::PROBLEM_JSON,
        body.len(),
        crate::build_info::SERVER,
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncWrite + Unpin> ProblemHeads<T> {
    /// Writes what is left of a replacement; `Ready(Ok)` once none is left.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemHeads<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        if this.first_bytes.len() < H2_PREFACE.len() {
            let want = H2_PREFACE.len() - this.first_bytes.len();
            let new = &buf.filled()[before..];
            this.first_bytes.extend_from_slice(&new[..new.len().min(want)]);
            if this.first_bytes.len() == H2_PREFACE.len() {
                this.h2 = this.first_bytes == H2_PREFACE;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemHeads<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if !self.h2 {
            if let Some(problem) = replacement(buf) {
                self.pending = Some((problem, 0));
                // hyper's head counts as written; the replacement goes out
                // now or on the flush hyper does next.
                let _ = self.poll_pending(cx)?;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Vectored when the connection is, so hyper sends a head and its body
    /// in one `writev` instead of copying the body behind the head. Its own
    /// error heads have no body: they still arrive alone, as one slice.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            return self.poll_write(cx, only);
        }
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_become_problems_and_nothing_else_does() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(replacement(hyper_431).expect("rewritten")).expect("utf-8");
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("content-type: application/problem+json\r\n"), "{out}");
        assert!(out.ends_with("}") && out.contains("\"code\":\"headers_too_large\""), "{out}");

        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(ours).is_none(), "an answer with a type is ours");
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n").is_none(), "half a head");
    }
}
