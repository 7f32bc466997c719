#include "server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <optional>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/logging.h"
#include "base/thread_annotations.h"

namespace tokenfab {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

}  // namespace

Status HttpServerConfig::Validate() const {
  if (port < 0 || port > 65535) return InvalidArgumentError("port must be in [0, 65535]");
  if (num_threads < 1 || num_threads > 256) return InvalidArgumentError("HTTP threads must be in [1, 256]");
  if (max_body_bytes < 1024) return InvalidArgumentError("max body size must be >= 1 KiB");
  if (max_connections < 1) return InvalidArgumentError("max connections must be >= 1");
  return Status::Ok();
}

std::string HttpRequest::Header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string HttpRequest::QueryParam(const std::string& key) const {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(pos, end - pos);
    const size_t eq = part.find('=');
    if (part.substr(0, eq) == key) return eq == std::string::npos ? "" : part.substr(eq + 1);
    pos = end + 1;
  }
  return "";
}

class Connection;

// Lingering close bounds: a client still sending after an error gets this long in all, and
// at most kLingerPerRead between two reads.
constexpr std::chrono::milliseconds kLingerTotal{5000};
constexpr std::chrono::milliseconds kLingerPerRead{1000};

struct HttpServer::Impl {
  HttpServerConfig config;
  HttpHandler handler;
  std::atomic<int> connections{0};
  Mutex mu;
  std::vector<std::weak_ptr<Connection>> live GUARDED_BY(mu);
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  void DoAccept();
};

// One TCP connection: requests one after another (keep-alive), each an exchange.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {
    ++server_->connections;
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    // Streamed tokens are small writes: without this, Nagle's algorithm holds each one back
    // until the client's delayed ACK (~40 ms), which would be every inter-token latency.
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }
  ~Connection() { --server_->connections; }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }
  void CloseFromServer() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->lingering_) self->Close();  // its exchange is over: nothing to cancel
      else self->ClientGone();
    });
  }

  // --- Exchange operations: all run on the strand, for the exchange `id` only. ---
  void Respond(uint64_t id, int status, const std::string& type, std::string body,
               HttpHeaders headers) {
    Run(id, [this, status, type, body = std::move(body), headers = std::move(headers)]() mutable {
      auto res = std::make_shared<http::response<http::string_body>>(
          http::int_to_status(static_cast<unsigned>(status)), 11);
      res->set(http::field::server, "tokenfab");
      res->set(http::field::content_type, type);
      for (const auto& [name, value] : headers) res->set(name, value);
      res->keep_alive(keep_alive_);
      res->body() = std::move(body);
      res->prepare_payload();
      Out out;
      out.kind = Out::kResponse;
      out.bytes = res->body().size();
      out.response = std::move(res);
      responded_ = true;
      Enqueue(std::move(out));
    });
  }
  void StartStream(uint64_t id, int status, const std::string& type, HttpHeaders headers) {
    Run(id, [this, status, type, headers = std::move(headers)] {
      auto res = std::make_shared<http::response<http::empty_body>>(
          http::int_to_status(static_cast<unsigned>(status)), 11);
      res->set(http::field::server, "tokenfab");
      res->set(http::field::content_type, type);
      res->set(http::field::cache_control, "no-cache");
      for (const auto& [name, value] : headers) res->set(name, value);
      res->keep_alive(keep_alive_);
      res->chunked(true);
      Out out;
      out.kind = Out::kHeader;
      out.serializer = std::make_shared<http::response_serializer<http::empty_body>>(*res);
      out.header = std::move(res);
      responded_ = true;
      Enqueue(std::move(out));
    });
  }
  void Send(uint64_t id, std::string data) {
    if (data.empty()) return;
    Run(id, [this, data = std::move(data)]() mutable {
      Out out;
      out.kind = Out::kChunk;
      out.bytes = data.size();
      out.data = std::make_shared<std::string>(std::move(data));
      Enqueue(std::move(out));
    });
  }
  void End(uint64_t id) {
    Run(id, [this] {
      Out out;
      out.kind = Out::kLast;
      Enqueue(std::move(out));
    });
  }
  void Post(std::function<void()> fn) {
    net::post(stream_.get_executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
  }
  void SetOnClose(uint64_t id, std::function<void()> on_close) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this(), id, fn = std::move(on_close)]() mutable {
      if (id != self->exchange_id_ || !self->active_) return;
      if (self->gone_) fn();
      else self->on_close_ = std::move(fn);
    });
  }
  bool gone() const { return gone_.load(); }
  const std::string& peer() const { return peer_; }

 private:
  struct Out {
    enum Kind { kResponse, kHeader, kChunk, kLast } kind = kChunk;
    std::shared_ptr<http::response<http::string_body>> response;
    std::shared_ptr<http::response<http::empty_body>> header;
    std::shared_ptr<http::response_serializer<http::empty_body>> serializer;
    std::shared_ptr<std::string> data;
    size_t bytes = 0;
  };

  template <typename Fn>
  void Run(uint64_t id, Fn fn) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this(), id, fn = std::move(fn)]() mutable {
      if (id != self->exchange_id_ || !self->active_ || self->gone_) return;
      fn();
    });
  }

  void DoRead() {
    parser_.emplace();
    parser_->body_limit(server_->config.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->config.max_header_bytes));
    stream_.expires_after(requests_ == 0 ? server_->config.request_timeout
                                         : server_->config.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset) {
      Close();
      return;
    }
    if (ec) {
      // Unparseable or over a limit: answer once and close.
      const bool too_big = ec == http::error::body_limit;
      keep_alive_ = false;
      linger_ = true;
      active_ = true;
      ++exchange_id_;
      const std::string message = too_big ? "the request body exceeds " +
                                                 std::to_string(server_->config.max_body_bytes) +
                                                 " bytes"
                                           : "malformed HTTP request: " + ec.message();
      Respond(exchange_id_, too_big ? 413 : (ec == http::error::header_limit ? 431 : 400),
              "application/json",
              R"({"error":{"message":")" + message +
                  R"(","type":"invalid_request_error","param":null,"code":null}})",
              {});
      return;
    }
    ++requests_;
    http::request<http::string_body> req = parser_->release();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    const size_t q = request.target.find('?');
    request.path = request.target.substr(0, q);
    if (q != std::string::npos) request.query = request.target.substr(q + 1);
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers[name] = std::string(field.value());
    }
    request.body = std::move(req.body());
    keep_alive_ = req.keep_alive();
    active_ = true;
    responded_ = false;
    ++exchange_id_;
    stream_.expires_never();
    WatchForDisconnect();
    auto exchange = MakeExchange();
    try {
      server_->handler(request, exchange);
    } catch (const std::exception& e) {
      LOG(ERROR) << "HTTP handler threw: " << e.what();
      if (!responded_) {
        Respond(exchange_id_, 500, "application/json",
                R"({"error":{"message":"internal error","type":"server_error","param":null,"code":null}})",
                {});
      }
    }
  }

  // While a request is being served no more bytes are expected: the socket turning readable
  // means EOF (the client left) or a pipelined request (served after this one).
  void WatchForDisconnect() {
    stream_.socket().async_wait(
        tcp::socket::wait_read,
        net::bind_executor(stream_.get_executor(),
                           [self = shared_from_this(), id = exchange_id_](beast::error_code ec) {
                             if (ec || id != self->exchange_id_ || !self->active_) return;
                             char c;
                             const ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1,
                                                      MSG_PEEK | MSG_DONTWAIT);
                             if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                               self->ClientGone();
                             }
                           }));
  }

  void Enqueue(Out out) {
    queued_bytes_ += out.bytes;
    out_.push_back(std::move(out));
    if (queued_bytes_ > server_->config.max_queued_stream_bytes) {
      LOG(WARNING) << "client " << peer_ << " reads too slowly (" << queued_bytes_
                   << " bytes queued); disconnecting";
      ClientGone();
      return;
    }
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    if (out_.empty() || gone_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    Out& o = out_.front();
    stream_.expires_after(server_->config.write_timeout);
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); };
    switch (o.kind) {
      case Out::kResponse:
        http::async_write(stream_, *o.response, std::move(done));
        break;
      case Out::kHeader:
        http::async_write_header(stream_, *o.serializer, std::move(done));
        break;
      case Out::kChunk:
        net::async_write(stream_, http::make_chunk(net::buffer(*o.data)), std::move(done));
        break;
      case Out::kLast:
        net::async_write(stream_, http::make_chunk_last(), std::move(done));
        break;
    }
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    if (ec || gone_) {
      ClientGone();
      out_.clear();
      queued_bytes_ = 0;
      return;
    }
    const bool ends = out_.front().kind == Out::kResponse || out_.front().kind == Out::kLast;
    queued_bytes_ -= out_.front().bytes;
    out_.pop_front();
    if (ends) {
      FinishExchange();
      return;
    }
    DoWrite();
  }

  void FinishExchange() {
    writing_ = false;
    active_ = false;
    on_close_ = nullptr;
    out_.clear();
    queued_bytes_ = 0;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // the disconnect watch
    stream_.expires_never();
    if (linger_ && !gone_) {
      LingerThenClose();
      return;
    }
    if (!keep_alive_ || gone_) {
      Close();
      return;
    }
    DoRead();
  }

  // After an error answered before the whole request was read (a body over the limit, bytes
  // that are not HTTP), the client may still be sending. Closing at once with those bytes
  // unread makes the kernel send a reset, which can destroy the response before the client
  // reads it (its send fails with a broken pipe instead). So, like nginx's lingering close:
  // end our side, then read and drop what still comes, for a bounded time, and close.
  void LingerThenClose() {
    gone_ = true;
    lingering_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    linger_deadline_ = std::chrono::steady_clock::now() + kLingerTotal;
    DoLinger();
  }

  void DoLinger() {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        linger_deadline_ - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds(0)) {
      Close();
      return;
    }
    stream_.expires_after(std::min(left, kLingerPerRead));
    discard_.resize(16 << 10);
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->DoLinger();
                            });
  }

  void ClientGone() {
    if (gone_) return;
    gone_ = true;
    if (active_) {
      active_ = false;
      if (on_close_) {
        auto fn = std::move(on_close_);
        on_close_ = nullptr;
        fn();
      }
    }
    // A write in flight still reads its message: the queue is dropped when it completes.
    if (!writing_) out_.clear();
    Close();
  }

  void Close() {
    gone_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  std::shared_ptr<HttpExchange> MakeExchange();

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t exchange_id_ = 0;
  uint64_t requests_ = 0;
  bool active_ = false;     // an exchange is under way
  bool responded_ = false;
  bool keep_alive_ = false;
  bool linger_ = false;     // close with LingerThenClose (see there)
  bool lingering_ = false;  // in it
  std::chrono::steady_clock::time_point linger_deadline_;
  std::vector<char> discard_;
  std::atomic<bool> gone_{false};
  std::function<void()> on_close_;
  std::deque<Out> out_;
  bool writing_ = false;
  size_t queued_bytes_ = 0;
};

class Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Connection> connection, uint64_t id)
      : connection_(std::move(connection)), id_(id) {}
  void Respond(int status, const std::string& type, std::string body, HttpHeaders headers) override {
    connection_->Respond(id_, status, type, std::move(body), std::move(headers));
  }
  void StartStream(int status, const std::string& type, HttpHeaders headers) override {
    connection_->StartStream(id_, status, type, std::move(headers));
  }
  void Send(std::string data) override { connection_->Send(id_, std::move(data)); }
  void End() override { connection_->End(id_); }
  void Post(std::function<void()> fn) override { connection_->Post(std::move(fn)); }
  void SetOnClose(std::function<void()> on_close) override {
    connection_->SetOnClose(id_, std::move(on_close));
  }
  bool closed() const override { return connection_->gone(); }
  std::string peer() const override { return connection_->peer(); }

 private:
  std::shared_ptr<Connection> connection_;
  uint64_t id_;
};

std::shared_ptr<HttpExchange> Connection::MakeExchange() {
  return std::make_shared<Exchange>(shared_from_this(), exchange_id_);
}

void HttpServer::Impl::DoAccept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of file descriptors, say: retry after a pause instead of spinning.
      LOG(WARNING) << "accept failed: " << ec.message();
      auto timer = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) { DoAccept(); });
      return;
    }
    {
      if (connections.load() >= config.max_connections) {
        LOG(WARNING) << "refusing a connection: " << connections.load() << " open";
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        auto connection = std::make_shared<Connection>(std::move(socket), this);
        {
          MutexLock lock(&mu);
          if (live.size() > 2 * static_cast<size_t>(connections.load()) + 64) {
            std::erase_if(live, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
          }
          live.push_back(connection);
        }
        connection->Start();
      }
    }
    DoAccept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerConfig& config,
                                                      HttpHandler handler) {
  TF_RETURN_IF_ERROR(config.Validate());
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->handler = std::move(handler);
  beast::error_code ec;
  const auto address = net::ip::make_address(config.host, ec);
  if (ec) return InvalidArgumentError("bad host address '" + config.host + "': " + ec.message());
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(config.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on " + config.host + ":" + std::to_string(config.port) +
                            ": " + ec.message());
  }
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(impl)));
  Impl& i = *server->impl_;
  server->port_ = i.acceptor.local_endpoint().port();
  i.work.emplace(net::make_work_guard(i.ioc));
  i.DoAccept();
  for (int t = 0; t < config.num_threads; ++t) {
    i.threads.emplace_back([&i] {
      while (true) {
        try {
          i.ioc.run();
          return;
        } catch (const std::exception& e) {
          LOG(ERROR) << "HTTP I/O thread caught: " << e.what();
        }
      }
    });
  }
  return server;
}

int HttpServer::num_connections() const { return impl_->connections.load(); }

void HttpServer::StopAccepting() {
  net::post(impl_->ioc, [i = impl_.get()] {
    beast::error_code ignored;
    i->acceptor.close(ignored);
  });
}

void HttpServer::Stop() {
  if (!impl_ || impl_->threads.empty()) return;
  StopAccepting();
  std::vector<std::shared_ptr<Connection>> open;
  {
    MutexLock lock(&impl_->mu);
    for (auto& w : impl_->live) {
      if (auto c = w.lock()) open.push_back(std::move(c));
    }
    impl_->live.clear();
  }
  for (auto& c : open) c->CloseFromServer();
  open.clear();
  impl_->work.reset();
  // Connections finish their closes; then the context runs out of work and the threads end.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (impl_->connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace tokenfab
