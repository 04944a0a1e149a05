package web

import (
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// staticFiles serves the files of fsys and nothing else: a folder, or a
// name that is not there, is the not-found page, never a listing of what
// the folder holds.
func (s *Server) staticFiles(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	notFoundPage := s.handle(notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Set here as well as by noSniff, so the files keep it wherever
		// this handler is mounted.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if fi, err := fs.Stat(fsys, name); name == "" || strings.HasSuffix(r.URL.Path, "/") || err != nil || !fi.Mode().IsRegular() {
			// A miss is not cached: the file may come with the next deploy.
			w.Header().Del("Cache-Control")
			notFoundPage.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// noSniff tells browsers to take every response as the type it declares.
// Photos and files come from people and deploys; a browser that guessed a
// type from the bytes could run as a script what was sent as an image.
func noSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
