// Command gitserver is Git's own smart-HTTP server (git-http-backend, run as CGI) for atoll's
// delivery tests: clone, fetch and push over HTTP, with optional basic auth on every
// request. Usage: gitserver -root DIR -listen 127.0.0.1:PORT [-user U -password P]
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	root := flag.String("root", ".", "folder holding the repositories")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	user := flag.String("user", "", "basic-auth user (none: no auth)")
	password := flag.String("password", "", "basic-auth password")
	flag.Parse()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		log.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	abs, err := filepath.Abs(*root)
	if err != nil {
		log.Fatal(err)
	}
	h := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + abs,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=atoll",
		},
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if *user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != *user || p != *password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	log.Printf("serving %s on http://%s", abs, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
