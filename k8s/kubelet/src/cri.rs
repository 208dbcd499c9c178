//! The CRI v1 connection to containerd over its unix socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
pub use k8s_cri::v1 as api;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Runtime and image clients on one channel. The channel reconnects on its
/// own when containerd restarts; calls fail with `Unavailable` meanwhile.
#[derive(Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    pub socket: PathBuf,
}

/// CRI messages can be large (ListContainers on a busy node, ExecSync output).
const MAX_MESSAGE: usize = 16 << 20;

impl Cri {
    /// A lazily connected channel: creating it never fails on a down runtime.
    pub fn new(socket: &Path) -> Result<Cri, tonic::transport::Error> {
        let path = socket.to_path_buf();
        let channel = Endpoint::try_from("http://[::1]:0")?
            .connect_timeout(Duration::from_secs(5))
            // Generous: image pulls on slow links and StopContainer with long
            // grace periods go through the same channel.
            .timeout(Duration::from_secs(1800))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }));
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            socket: socket.to_path_buf(),
        })
    }
}

/// A CRI error in the form users see it upstream: `rpc error: code = X desc = Y`.
pub fn describe(status: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", status.code(), status.message())
}
