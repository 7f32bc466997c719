#include "bench/http_client.h"

#include <cstdint>
#include <limits>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/strings.h"

namespace tokenfab {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

}  // namespace

struct HttpConnection::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  std::string host;
  bool open = false;
  int responses = 0;             // read in full
  bool header_received = false;  // of the current response
  bool stale_failure = false;

  // Runs one asynchronous operation to completion or its deadline (the stream's timer closes
  // the socket, failing the operation with beast::error::timeout).
  template <typename Start>
  beast::error_code Run(Clock::time_point deadline, Start start) {
    stream.expires_at(deadline);
    beast::error_code result;
    bool done = false;
    start([&](beast::error_code ec, size_t) {
      result = ec;
      done = true;
    });
    ioc.restart();
    while (!done && ioc.run_one() > 0) {
    }
    if (!done) result = net::error::timed_out;
    return result;
  }
};

HttpConnection::HttpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpConnection::~HttpConnection() { Close(); }

Result<std::unique_ptr<HttpConnection>> HttpConnection::Connect(const std::string& host, int port,
                                                                std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->host = host + ":" + std::to_string(port);
  tcp::resolver resolver(impl->ioc);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return UnavailableError("cannot resolve " + host + ": " + ec.message());
  impl->stream.expires_after(timeout);
  bool done = false;
  impl->stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  impl->ioc.run();
  if (!done || ec) {
    return UnavailableError("cannot connect to " + impl->host + ": " +
                            (done ? ec.message() : std::string("timed out")));
  }
  impl->stream.socket().set_option(tcp::no_delay(true), ec);
  impl->open = true;
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
}

bool HttpConnection::open() const { return impl_->open; }
int HttpConnection::responses() const { return impl_->responses; }
bool HttpConnection::StaleFailure() const { return impl_->stale_failure; }

void HttpConnection::Close() {
  if (!impl_ || !impl_->open) return;
  beast::error_code ignored;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  impl_->stream.socket().close(ignored);
  impl_->open = false;
}

Status HttpConnection::SendRaw(std::string_view bytes, std::chrono::milliseconds timeout) {
  if (!impl_->open) return UnavailableError("connection closed");
  const auto ec = impl_->Run(Clock::now() + timeout, [&](auto handler) {
    net::async_write(impl_->stream, net::buffer(bytes.data(), bytes.size()), std::move(handler));
  });
  if (ec) {
    Close();
    return UnavailableError("send failed: " + ec.message());
  }
  return Status::Ok();
}

Status HttpConnection::Send(const std::string& method, const std::string& target,
                            const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout) {
  if (!impl_->open) return UnavailableError("connection closed");
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, impl_->host);
  req.set(http::field::user_agent, "tokenfab-bench");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.keep_alive(true);
  req.prepare_payload();
  impl_->header_received = false;
  impl_->stale_failure = false;
  const auto ec = impl_->Run(Clock::now() + timeout, [&](auto handler) {
    http::async_write(impl_->stream, req, std::move(handler));
  });
  if (ec) {
    impl_->stale_failure = impl_->responses > 0;
    Close();
    return UnavailableError("sending the request failed: " + ec.message());
  }
  return Status::Ok();
}

Result<HttpClientResponse> HttpConnection::Receive(std::chrono::milliseconds timeout,
                                                   const BodyCallback& on_body) {
  if (!impl_->open) return UnavailableError("connection closed");
  const auto deadline = Clock::now() + timeout;
  http::response_parser<http::string_body> parser;
  // No limit (a number: Boost 1.74 compares a content length against an empty optional as
  // "over the limit").
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  auto fail = [&](const beast::error_code& ec, const char* what) -> Status {
    Close();
    if (ec == beast::error::timeout || ec == net::error::timed_out) {
      return DeadlineExceededError(std::string(what) + ": timed out");
    }
    return UnavailableError(std::string(what) + ": " + ec.message());
  };
  auto ec = impl_->Run(deadline, [&](auto handler) {
    http::async_read_header(impl_->stream, impl_->buffer, parser, std::move(handler));
  });
  if (ec) {
    // Nothing of a response came: on a used connection, the server closed it while idle.
    const bool closed_by_peer = ec == http::error::end_of_stream || ec == net::error::eof ||
                                ec == net::error::connection_reset ||
                                ec == net::error::broken_pipe;
    impl_->stale_failure = closed_by_peer && impl_->responses > 0 && impl_->buffer.size() == 0;
    return fail(ec, "reading the response header");
  }
  impl_->header_received = true;
  HttpClientResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = std::string(field.value());
  }
  response.keep_alive = parser.get().keep_alive();
  while (!parser.is_done()) {
    ec = impl_->Run(deadline, [&](auto handler) {
      http::async_read_some(impl_->stream, impl_->buffer, parser, std::move(handler));
    });
    if (ec == http::error::end_of_stream) break;
    if (ec) return fail(ec, "reading the response body");
    if (on_body) {
      std::string& body = parser.get().body();
      if (!body.empty()) {
        const bool more = on_body(body);
        body.clear();
        if (!more) {
          Close();
          return response;
        }
      }
    }
  }
  if (!on_body) response.body = std::move(parser.get().body());
  ++impl_->responses;
  if (!response.keep_alive) Close();
  return response;
}

Result<HttpClientResponse> HttpConnection::Request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::chrono::milliseconds timeout, const BodyCallback& on_body) {
  const auto deadline = Clock::now() + timeout;
  TF_RETURN_IF_ERROR(Send(method, target, body, headers, timeout));
  return Receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                 on_body);
}

Result<HttpUrl> ParseHttpUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    return InvalidArgumentError("'" + url + "' is not an http:// URL");
  }
  std::string rest = url.substr(scheme.size());
  HttpUrl out;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    out.path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    TF_ASSIGN_OR_RETURN(const int64_t port, ParseInt64(rest.substr(colon + 1), "port"));
    if (port < 1 || port > 65535) return InvalidArgumentError("bad port in " + url);
    out.port = static_cast<int>(port);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return InvalidArgumentError("no host in " + url);
  out.host = rest;
  return out;
}

}  // namespace tokenfab
