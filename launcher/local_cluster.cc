#include "launcher/local_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace deepfm::launcher {

Status ReserveLoopbackPorts(int n, std::vector<int>* ports) {
  ports->clear();
  std::vector<int> fds;
  Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = Internal(std::string("socket: ") + std::strerror(errno));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = Internal(std::string("reserving a loopback port: ") + std::strerror(errno));
      break;
    }
    ports->push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return status;
}

Status LocalClusterSpec(int ps_num, int worker_num, ClusterSpec* spec) {
  std::vector<int> ports;
  Status s = ReserveLoopbackPorts(ps_num + worker_num, &ports);
  if (!s.ok()) return s;
  *spec = ClusterSpec();
  for (int i = 0; i < ps_num + worker_num; ++i) {
    (i < ps_num ? spec->ps : spec->worker).push_back("127.0.0.1:" + std::to_string(ports[i]));
  }
  return ValidateClusterSpec(*spec, "local job", /*need_task=*/false);
}

}  // namespace deepfm::launcher
