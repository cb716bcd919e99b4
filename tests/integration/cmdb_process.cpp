#include "tests/integration/cmdb_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

namespace cmdb::testing {

CmdbProcess StartCmdb(const std::string& binary, const std::vector<std::string>& args,
                      bool ignore_sigint, const std::vector<std::string>& env) {
  CmdbProcess p;
  // The environment is made before fork: the child of a threaded process calls only exec.
  std::vector<std::string> environment = env;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> all = {binary, "serve"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe(pipefd) != 0) return p;
  p.pid = fork();
  if (p.pid == 0) {
    if (ignore_sigint) signal(SIGINT, SIG_IGN);
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(pipefd[1]);
  p.out = fdopen(pipefd[0], "r");
  char line[512];
  while (p.port == 0 && fgets(line, sizeof line, p.out) != nullptr) {
    const std::string text(line);
    const auto at = text.find("http://127.0.0.1:");
    if (at != std::string::npos)
      p.port = static_cast<std::uint16_t>(std::stoi(text.substr(at + 17)));
  }
  return p;
}

int StopCmdb(CmdbProcess& process, int sig) {
  int status = 0;
  if (process.pid > 0) {
    kill(process.pid, sig);
    waitpid(process.pid, &status, 0);
    process.pid = 0;
  }
  if (process.out != nullptr) {
    fclose(process.out);
    process.out = nullptr;
  }
  return status;
}

}  // namespace cmdb::testing
