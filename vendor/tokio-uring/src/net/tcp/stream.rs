use std::{
    io,
    net::SocketAddr,
    os::unix::prelude::{AsRawFd, FromRawFd, RawFd},
};

use crate::{
    buf::fixed::FixedBuf,
    buf::{BoundedBuf, BoundedBufMut},
    io::{SharedFd, Socket},
    UnsubmittedWrite,
};

/// A TCP stream between a local and a remote socket.
///
/// A TCP stream can either be created by connecting to an endpoint, via the
/// [`connect`] method, or by [`accepting`] a connection from a [`listener`].
///
/// # Examples
///
/// ```no_run
/// use tokio_uring::net::TcpStream;
/// use std::net::ToSocketAddrs;
///
/// fn main() -> std::io::Result<()> {
///     tokio_uring::start(async {
///         // Connect to a peer
///         let mut stream = TcpStream::connect("127.0.0.1:8080".parse().unwrap()).await?;
///
///         // Write some data.
///         let (result, _) = stream.write(b"hello world!".as_slice()).submit().await;
///         result.unwrap();
///
///         Ok(())
///     })
/// }
/// ```
///
/// [`connect`]: TcpStream::connect
/// [`accepting`]: crate::net::TcpListener::accept
/// [`listener`]: crate::net::TcpListener
pub struct TcpStream {
    pub(super) inner: Socket,
}

/// ringd patch: another handle to the same socket (the descriptor is shared and reference
/// counted, as every in-flight operation already shares it). The socket closes when the last
/// handle, and the last operation using it, are gone.
impl Clone for TcpStream {
    fn clone(&self) -> Self {
        TcpStream {
            inner: self.inner.clone(),
        }
    }
}

impl TcpStream {
    /// Opens a TCP connection to a remote host at the given `SocketAddr`
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(addr, libc::SOCK_STREAM)?;
        socket.connect(socket2::SockAddr::from(addr)).await?;
        let tcp_stream = TcpStream { inner: socket };
        Ok(tcp_stream)
    }

    /// Creates new `TcpStream` from a previously bound `std::net::TcpStream`.
    ///
    /// This function is intended to be used to wrap a TCP stream from the
    /// standard library in the tokio-uring equivalent. The conversion assumes nothing
    /// about the underlying socket; it is left up to the user to decide what socket
    /// options are appropriate for their use case.
    ///
    /// This can be used in conjunction with socket2's `Socket` interface to
    /// configure a socket before it's handed off, such as setting options like
    /// `reuse_address` or binding to multiple addresses.
    pub fn from_std(socket: std::net::TcpStream) -> Self {
        let inner = Socket::from_std(socket);
        Self { inner }
    }

    pub(crate) fn from_socket(inner: Socket) -> Self {
        Self { inner }
    }

    /// Read some data from the stream into the buffer.
    ///
    /// Returns the original buffer and quantity of data read.
    pub async fn read<T: BoundedBufMut>(&self, buf: T) -> crate::BufResult<usize, T> {
        self.inner.read(buf).await
    }

    /// Read some data from the stream into a registered buffer.
    ///
    /// Like [`read`], but using a pre-mapped buffer
    /// registered with [`FixedBufRegistry`].
    ///
    /// [`read`]: Self::read
    /// [`FixedBufRegistry`]: crate::buf::fixed::FixedBufRegistry
    ///
    /// # Errors
    ///
    /// In addition to errors that can be reported by `read`,
    /// this operation fails if the buffer is not registered in the
    /// current `tokio-uring` runtime.
    pub async fn read_fixed<T>(&self, buf: T) -> crate::BufResult<usize, T>
    where
        T: BoundedBufMut<BufMut = FixedBuf>,
    {
        self.inner.read_fixed(buf).await
    }

    /// Write some data to the stream from the buffer.
    ///
    /// Returns the original buffer and quantity of data written.
    pub fn write<T: BoundedBuf>(&self, buf: T) -> UnsubmittedWrite<T> {
        self.inner.write(buf)
    }

    /// Attempts to write an entire buffer to the stream.
    ///
    /// This method will continuously call [`write`] until there is no more data to be
    /// written or an error is returned. This method will not return until the entire
    /// buffer has been successfully written or an error has occurred.
    ///
    /// If the buffer contains no data, this will never call [`write`].
    ///
    /// # Errors
    ///
    /// This function will return the first error that [`write`] returns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::net::SocketAddr;
    /// use tokio_uring::net::TcpListener;
    /// use tokio_uring::buf::BoundedBuf;
    ///
    /// let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    ///
    /// tokio_uring::start(async {
    ///     let listener = TcpListener::bind(addr).unwrap();
    ///
    ///     println!("Listening on {}", listener.local_addr().unwrap());
    ///
    ///     loop {
    ///         let (stream, _) = listener.accept().await.unwrap();
    ///         tokio_uring::spawn(async move {
    ///             let mut n = 0;
    ///             let mut buf = vec![0u8; 4096];
    ///             loop {
    ///                 let (result, nbuf) = stream.read(buf).await;
    ///                 buf = nbuf;
    ///                 let read = result.unwrap();
    ///                 if read == 0 {
    ///                     break;
    ///                 }
    ///
    ///                 let (res, slice) = stream.write_all(buf.slice(..read)).await;
    ///                 let _ = res.unwrap();
    ///                 buf = slice.into_inner();
    ///                 n += read;
    ///             }
    ///         });
    ///     }
    /// });
    /// ```
    ///
    /// [`write`]: Self::write
    pub async fn write_all<T: BoundedBuf>(&self, buf: T) -> crate::BufResult<(), T> {
        self.inner.write_all(buf).await
    }

    /// Writes data into the socket from a registered buffer.
    ///
    /// Like [`write`], but using a pre-mapped buffer
    /// registered with [`FixedBufRegistry`].
    ///
    /// [`write`]: Self::write
    /// [`FixedBufRegistry`]: crate::buf::fixed::FixedBufRegistry
    ///
    /// # Errors
    ///
    /// In addition to errors that can be reported by `write`,
    /// this operation fails if the buffer is not registered in the
    /// current `tokio-uring` runtime.
    pub async fn write_fixed<T>(&self, buf: T) -> crate::BufResult<usize, T>
    where
        T: BoundedBuf<Buf = FixedBuf>,
    {
        self.inner.write_fixed(buf).await
    }

    /// ringd patch: [`TcpStream::write_fixed`] as the operation itself, submitted now rather
    /// than at the first poll: the caller's future holds the operation directly instead of two
    /// `async fn` states around it, each moved into place and polled in turn.
    ///
    /// # Panics
    /// Outside a tokio-uring runtime, or if the submission fails, as `write_fixed` does.
    pub fn write_fixed_op<T>(
        &self,
        buf: T,
    ) -> impl std::future::Future<Output = crate::BufResult<usize, T>>
    where
        T: BoundedBuf<Buf = FixedBuf> + Unpin + 'static,
    {
        crate::runtime::driver::op::Op::write_fixed_at(&self.inner.fd, buf, 0).unwrap()
    }

    /// ringd patch: submits a write of all of `buf` whose completion wakes no task: the driver
    /// keeps the socket and the buffer, writes the rest itself after a short write, and gives
    /// the buffer back to its pool once everything is sent. The returned [`DetachedWrite`]
    /// tells how it ended once it is finished; the bytes are sent in order before those of
    /// any write submitted after it only if that write waits for it to finish.
    // Never inlined: the driver's submission is inlined into this one body, not into the
    // future of every caller.
    #[inline(never)]
    pub fn write_fixed_detached(&self, buf: crate::buf::Slice<FixedBuf>) -> crate::DetachedWrite {
        crate::runtime::CONTEXT
            .with(|x| x.with_driver(|driver| driver.submit_detached(&self.inner.fd, buf, None)))
            .expect("Not in a runtime context")
    }

    /// ringd patch: [`write_fixed_detached`](Self::write_fixed_detached) of `buf` followed by
    /// `body`, in one `writev` that reads the body where it is (no copy into the fixed
    /// buffer); the driver holds both until everything is sent.
    pub fn write_fixed_detached_then(&self, buf: crate::buf::Slice<FixedBuf>, body: bytes::Bytes) -> crate::DetachedWrite {
        crate::runtime::CONTEXT
            .with(|x| x.with_driver(|driver| driver.submit_detached_then(&self.inner.fd, buf, body)))
            .expect("Not in a runtime context")
    }

    /// Attempts to write an entire buffer to the stream.
    ///
    /// This method will continuously call [`write_fixed`] until there is no more data to be
    /// written or an error is returned. This method will not return until the entire
    /// buffer has been successfully written or an error has occurred.
    ///
    /// If the buffer contains no data, this will never call [`write_fixed`].
    ///
    /// # Errors
    ///
    /// This function will return the first error that [`write_fixed`] returns.
    ///
    /// [`write_fixed`]: Self::write_fixed
    pub async fn write_fixed_all<T>(&self, buf: T) -> crate::BufResult<(), T>
    where
        T: BoundedBuf<Buf = FixedBuf>,
    {
        self.inner.write_fixed_all(buf).await
    }

    /// Writes data from multiple buffers into this socket using the scatter/gather IO style.
    ///
    /// This function will attempt to write the entire contents of `bufs`, but
    /// the entire write may not succeed, or the write may also generate an
    /// error. The bytes will be written starting at the specified offset.
    ///
    /// # Return
    ///
    /// The method returns the operation result and the same array of buffers
    /// passed in as an argument. A return value of `0` typically means that the
    /// underlying socket is no longer able to accept bytes and will likely not
    /// be able to in the future as well, or that the buffer provided is empty.
    ///
    /// # Errors
    ///
    /// Each call to `write` may generate an I/O error indicating that the
    /// operation could not be completed. If an error is returned then no bytes
    /// in the buffer were written to this writer.
    ///
    /// It is **not** considered an error if the entire buffer could not be
    /// written to this writer.
    ///
    /// [`Ok(n)`]: Ok
    pub async fn writev<T: BoundedBuf>(&self, buf: Vec<T>) -> crate::BufResult<usize, Vec<T>> {
        self.inner.writev(buf).await
    }

    /// ringd patch: receives into a buffer the kernel selects from `ring` when data arrives,
    /// so that the receive holds no memory while it waits. `Ok(None)` is the end of the
    /// stream; an empty ring fails with `ENOBUFS`.
    ///
    /// The receive is submitted when this is called, so the future holds only the operation.
    #[inline]
    pub fn recv_provided(&self, ring: &crate::buf::BufRing) -> crate::buf::ProvidedRecv {
        crate::buf::ProvidedRecv::new(&self.inner.fd, ring)
    }

    /// ringd patch: places the socket's file in a free slot of this thread's file table
    /// (`crate::register_files_sparse`), so that its receives into provided buffers and its
    /// writes (fixed-buffer or not) name the slot and the kernel does not look the file up for
    /// each.
    /// `Ok(false)` when there is no table or no free slot. The slot is emptied when the
    /// descriptor closes (the last handle and operation gone), with the ring's next
    /// submission: the socket is really closed then.
    pub async fn register_fixed(&self) -> std::io::Result<bool> {
        let fd = &self.inner.fd;
        if fd.fixed_slot().is_some() {
            return Ok(true);
        }
        let Some(handle) = crate::runtime::CONTEXT.with(|x| x.handle()) else {
            return Ok(false);
        };
        let Some(slot) = handle.take_fixed_slot() else {
            return Ok(false);
        };
        // Dropped before the update's answer (this future dropped), the slot may hold the file
        // or not: it is emptied like a closed file's, after the update.
        struct Pending(Option<u32>);
        impl Drop for Pending {
            fn drop(&mut self) {
                if let Some(slot) = self.0 {
                    crate::runtime::driver::release_fixed_slot(slot);
                }
            }
        }
        let mut pending = Pending(Some(slot));
        let res = match crate::runtime::driver::op::Op::register_fixed(fd, slot) {
            Ok(op) => op.await,
            Err(e) => Err(e),
        };
        pending.0 = None;
        match res {
            Ok(()) => {
                fd.set_fixed_slot(slot);
                Ok(true)
            }
            Err(e) => {
                // Refused: the slot stayed empty.
                handle.return_fixed_slot(slot);
                Err(e)
            }
        }
    }

    /// ringd patch: waits until the socket is ready for `events` (`POLLOUT`, `POLLIN`…) and
    /// returns the events that are ready (`IORING_OP_POLL_ADD`, one-shot).
    pub async fn ready(&self, events: u32) -> io::Result<u32> {
        crate::runtime::driver::op::Op::poll(&self.inner.fd, events)?.await
    }

    /// ringd patch: sends up to `len` bytes from the read end of a pipe with `splice(2)`.
    /// Returns how many were sent.
    pub async fn splice_from_pipe(
        &self,
        pipe: &std::rc::Rc<std::os::fd::OwnedFd>,
        len: u32,
    ) -> io::Result<usize> {
        crate::runtime::driver::op::Op::splice(
            &self.inner.fd,
            pipe,
            crate::io::Direction::OutOfPipe,
            len,
        )?
        .await
    }

    /// Shuts down the read, write, or both halves of this connection.
    ///
    /// This function will cause all pending and future I/O on the specified portions to return
    /// immediately with an appropriate value.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Sets the value of the TCP_NODELAY option on this socket.
    ///
    /// If set, this option disables the Nagle algorithm. This means that segments are always sent
    /// as soon as possible, even if there is only a small amount of data. When not set, data is
    /// buffered until there is a sufficient amount to send out, thereby avoiding the frequent
    /// sending of small packets.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }
}

impl FromRawFd for TcpStream {
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        TcpStream::from_socket(Socket::from_shared_fd(SharedFd::new(fd)))
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// ringd patch: borrow the socket for `setsockopt` helpers (`socket2::SockRef`).
impl std::os::fd::AsFd for TcpStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the descriptor is open for as long as `self` lives (the stream owns it through
        // its `SharedFd`, and it is closed only when the last reference is dropped), and the
        // borrow cannot outlive `self`.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}
