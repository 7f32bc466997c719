// HttpConnection: a blocking HTTP/1.1 client connection (keep-alive) over Boost.Beast, for the
// load generator and the server tests. Every call has a deadline; a streamed body is handed to
// a callback piece by piece as it arrives (server-sent events), so time to first byte and
// inter-chunk gaps are measured where they happen.
// Thread-safety: one thread uses a connection at a time; connections are independent.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace tokenfab {

struct HttpClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;                            // unless streamed to a callback
  bool keep_alive = false;
};

// Receives body bytes as they arrive; returning false stops reading and closes the connection
// (an aborted stream).
using BodyCallback = std::function<bool(std::string_view)>;

class HttpConnection {
 public:
  static Result<std::unique_ptr<HttpConnection>> Connect(const std::string& host, int port,
                                                         std::chrono::milliseconds timeout);
  ~HttpConnection();

  // Writes a request (Content-Length and Host are set).
  Status Send(const std::string& method, const std::string& target, const std::string& body,
              const std::vector<std::pair<std::string, std::string>>& headers,
              std::chrono::milliseconds timeout);
  // Reads one response; with `on_body` the body goes there instead of into the result.
  Result<HttpClientResponse> Receive(std::chrono::milliseconds timeout,
                                     const BodyCallback& on_body = nullptr);
  Result<HttpClientResponse> Request(const std::string& method, const std::string& target,
                                     const std::string& body,
                                     const std::vector<std::pair<std::string, std::string>>& headers,
                                     std::chrono::milliseconds timeout,
                                     const BodyCallback& on_body = nullptr);
  // Raw bytes, for tests of malformed requests.
  Status SendRaw(std::string_view bytes, std::chrono::milliseconds timeout);
  bool open() const;
  void Close();
  // Responses read in full on this connection so far: a connection that has served one may have
  // been closed by the server while idle (see StaleFailure).
  int responses() const;
  // Whether the last Send/Receive failed before any byte of a response arrived on a connection
  // that had already served one: the server had closed it between requests (llama-server does
  // after each streamed response, without saying "Connection: close"), so the request never
  // reached it and can go again on a new connection.
  bool StaleFailure() const;

 private:
  struct Impl;
  explicit HttpConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "http://host:port/path" -> parts; InvalidArgument otherwise (no TLS).
struct HttpUrl {
  std::string host;
  int port = 80;
  std::string path;  // "" or starting with '/'
};
Result<HttpUrl> ParseHttpUrl(const std::string& url);

}  // namespace tokenfab
