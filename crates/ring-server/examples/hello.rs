//! The README's handler example: three routes on the default config (127.0.0.1:8080).

use ring_server::{handler_async, Request, Response, Router, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(ServerConfig::default(), |_worker| {
        let mut r = Router::new();
        r.route("GET /hello", |_: &Request<'_>| Response::text("hi\n")).unwrap();
        r.route("GET /users/{id}", |req: &Request<'_>| {
            Response::json(&serde_json::json!({ "id": req.param("id") }))
        })
        .unwrap();
        r.route(
            "POST /items",
            handler_async(async |req: &Request<'_>| match req.json::<serde_json::Value>() {
                Ok(v) => Response::json(&v).status(201),
                Err(_) => Response::error(400),
            }),
        )
        .unwrap();
        r
    });
    let running = server.start()?;
    println!("listening on {:?}", running.local_addrs());
    Err(running.wait().into())
}
