// HttpServer: HTTP/1.1 with keep-alive over Boost.Beast/Asio, for the OpenAI API. It parses
// requests (Beast's parser, with header and body limits), hands each to a handler, and writes
// either one response or a chunked stream (server-sent events) back, in order.
//
// Defences: a body over max_body_bytes gets 413; a client that does not send a whole request
// within request_timeout, or does not read what it is sent within write_timeout, is
// disconnected; connections over max_connections are refused at once; a client that goes away
// mid-request is noticed at once (the socket turns readable with EOF) and the exchange's close
// callback runs, so the request is cancelled and its KV freed.
//
// Thread-safety: Start/StopAccepting/Stop from one controlling thread. HttpExchange methods
// may be called from any thread; they post to the connection's strand, on which the handler,
// the close callback and Post()ed work also run, one at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

namespace tokenfab {

struct HttpServerConfig {
  std::string host = "127.0.0.1";
  int port = 8000;                 // 0: an ephemeral port (see HttpServer::port())
  int num_threads = 2;             // I/O threads
  size_t max_body_bytes = 8 << 20;
  size_t max_header_bytes = 64 << 10;
  std::chrono::milliseconds request_timeout{30000};  // to receive one whole request
  std::chrono::milliseconds idle_timeout{120000};    // a keep-alive connection between requests
  std::chrono::milliseconds write_timeout{60000};    // for the client to take one write
  size_t max_queued_stream_bytes = 16 << 20;         // unsent stream data before disconnecting
  int max_connections = 4096;
  Status Validate() const;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // the target without the query
  std::string query;   // after '?', or empty
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string Header(const std::string& lowercase_name) const;
  // The value of `key` in the query string (no percent-decoding), or "".
  std::string QueryParam(const std::string& key) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // One complete response. Ends the exchange.
  virtual void Respond(int status, const std::string& content_type, std::string body,
                       HttpHeaders headers = {}) = 0;
  // A chunked response: headers now, then Send()s, then End().
  virtual void StartStream(int status, const std::string& content_type,
                           HttpHeaders headers = {}) = 0;
  virtual void Send(std::string data) = 0;
  virtual void End() = 0;
  // Runs `fn` on this exchange's strand (serialised with the handler and the close callback).
  virtual void Post(std::function<void()> fn) = 0;
  // Called once, on the strand, if the client disconnects before the exchange has ended.
  virtual void SetOnClose(std::function<void()> on_close) = 0;
  virtual bool closed() const = 0;
  virtual std::string peer() const = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<HttpExchange>)>;

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerConfig& config,
                                                   HttpHandler handler);
  ~HttpServer();  // Stop()

  int port() const { return port_; }
  int num_connections() const;
  // Closes the listening socket: no new connections; open ones carry on.
  void StopAccepting();
  // Closes every connection and joins the I/O threads.
  void Stop();

  struct Impl;  // the implementation (http_server.cc)

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace tokenfab
