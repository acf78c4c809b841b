//! A response body compressed as it streams.

use std::fmt;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::Coding;
use crate::http::{Body, BoxError};
use crate::metrics::Counter;

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    fn new(coding: Coding, gzip_level: u32, brotli_quality: u32) -> Self {
        match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(gzip_level),
            )),
            // 4 KiB internal buffer, window 2^22 (brotli's usual default).
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                brotli_quality,
                22,
            ))),
        }
    }

    /// Compresses `data` and flushes, so the client gets it now.
    fn write_flush(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        match self {
            Encoder::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
            Encoder::Brotli(e) => {
                e.write_all(data)?;
                e.flush()?;
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
        }
    }

    fn finish(self) -> std::io::Result<Bytes> {
        match self {
            Encoder::Gzip(e) => e.finish().map(Bytes::from),
            Encoder::Brotli(e) => Ok(Bytes::from(e.into_inner())),
        }
    }
}

/// Counters a compressed body updates as it streams.
#[derive(Clone, Debug)]
pub(crate) struct ByteCounters {
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
}

/// Compresses each chunk as the inner body yields it and flushes it, so
/// memory stays bounded by one chunk and a chunk the handler sends is sent
/// on at once.
pub(crate) struct CompressedBody {
    inner: Body,
    encoder: Option<Encoder>,
    trailers: Option<http::HeaderMap>,
    counters: Option<ByteCounters>,
}

impl fmt::Debug for CompressedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompressedBody")
            .field("finished", &self.encoder.is_none())
            .finish()
    }
}

impl CompressedBody {
    pub(crate) fn new(
        inner: Body,
        coding: Coding,
        gzip_level: u32,
        brotli_quality: u32,
        counters: Option<ByteCounters>,
    ) -> Self {
        CompressedBody {
            inner,
            encoder: Some(Encoder::new(coding, gzip_level, brotli_quality)),
            trailers: None,
            counters,
        }
    }

    /// Ends the compressed stream; the last bytes, if any.
    fn finish(&mut self) -> std::io::Result<Option<Bytes>> {
        let out = self
            .encoder
            .take()
            .map_or(Ok(Bytes::new()), Encoder::finish)?;
        self.count(0, out.len());
        Ok((!out.is_empty()).then_some(out))
    }

    fn count(&self, bytes_in: usize, bytes_out: usize) {
        if let Some(c) = &self.counters {
            c.bytes_in.inc_by(bytes_in as u64);
            c.bytes_out.inc_by(bytes_out as u64);
        }
    }
}

impl http_body::Body for CompressedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = encoder.write_flush(&data)?;
                        this.count(data.len(), out.len());
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        // Trailers end the body: finish the stream first.
                        this.trailers = frame.into_trailers().ok();
                        if let Some(out) = this.finish()? {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    if let Some(out) = this.finish()? {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
