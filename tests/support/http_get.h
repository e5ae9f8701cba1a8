// A plain HTTP/1.0 GET to a loopback port, for tests that scrape a
// Prometheus page; and a reader of the text exposition format it returns.
// Bounded: a connect or read that takes over 5 s fails the request.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

namespace deepfm::testing_util {

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

inline std::string Base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// A socket connected to 127.0.0.1:port whose reads and writes give up
// after 5 s; -1 if the connect fails.
inline int ConnectLoopbackBounded(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// GET http://127.0.0.1:port/path, with basic auth when `password` is set.
inline HttpReply HttpGet(int port, const std::string& path, const std::string& password = "") {
  HttpReply reply;
  const int fd = ConnectLoopbackBounded(port);
  if (fd < 0) return reply;
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n";
  if (!password.empty()) req += "Authorization: Basic " + Base64("deepfm:" + password) + "\r\n";
  req += "\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return reply;
  }
  std::string all;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) all.append(buf, static_cast<size_t>(n));
  close(fd);
  // "HTTP/1.x CODE ...\r\n...\r\n\r\nbody"
  const size_t sp = all.find(' ');
  if (all.rfind("HTTP/", 0) != 0 || sp == std::string::npos) return reply;
  reply.status = std::atoi(all.c_str() + sp + 1);
  const size_t end = all.find("\r\n\r\n");
  if (end != std::string::npos) reply.body = all.substr(end + 4);
  return reply;
}

// One sample of a text-format page: `name` with exactly `labels`; NaN when
// the page has no such sample.
inline double PromValue(const std::string& page, const std::string& name,
                        const std::map<std::string, std::string>& labels = {}) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const std::string n = line.substr(0, std::min(brace, line.find(' ')));
    if (n != name) continue;
    std::map<std::string, std::string> got;
    if (brace != std::string::npos && brace < space) {
      const size_t close = line.find('}', brace);
      std::string body = line.substr(brace + 1, close - brace - 1);
      // name="value",name="value" (values here hold no quotes or commas)
      for (size_t at = 0; at < body.size();) {
        const size_t eq = body.find('=', at);
        const size_t q2 = body.find('"', eq + 2);
        got[body.substr(at, eq - at)] = body.substr(eq + 2, q2 - eq - 2);
        at = q2 + 2;
      }
    }
    if (got == labels) return std::strtod(line.c_str() + space + 1, nullptr);
  }
  return std::nan("");
}

}  // namespace deepfm::testing_util
