package web

import (
	"net/http"
	"strings"
)

// limitBody refuses a request that declares a body larger than its route
// accepts, before anything is read or any database is asked. A body of no
// declared length (chunked) is cut off at the same limit as it is read;
// handlers bound what they read more tightly.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := bodyLimit(r.Method, r.URL.Path)
		if r.ContentLength > limit {
			// Without it the server reads the unread body (up to 256 KiB)
			// before it sends the answer, to keep the connection: a client
			// that declared a body and sends none would wait for nothing.
			w.Header().Set("Connection", "close")
			s.fail(w, r, &http.MaxBytesError{Limit: limit})
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// bodyLimit is the largest body a request to path may carry. It mirrors the
// routes of publicRoutes, siteAdminRoutes and platformAdminRoutes: a route
// added there that takes a larger form needs its class here. An address no
// route has gets the smallest limit, since its answer is a 404 or a 405.
func bodyLimit(method, path string) int64 {
	if method != http.MethodPost {
		return maxSmallForm // no route reads the body of anything but a POST
	}
	switch {
	case path == adminPrefix+"/login":
		return maxSmallForm
	case photoUploadPath(path):
		return maxUploadBody
	case isSiteAdmin(path):
		return maxAdminForm
	case path == opsPrefix || strings.HasPrefix(path, opsPrefix+"/"):
		// Every platform admin form, its sign-in too, is read with
		// maxSmallForm (superAdmin, opsLogin).
		return maxSmallForm
	case sendsEnquiry(path):
		return maxPublicForm
	}
	return maxSmallForm
}

// photoUploadPath reports whether path is a site-admin route whose form may
// carry photos: /site_admin/properties, /site_admin/properties/{id} and
// /site_admin/properties/{id}/photos.
func photoUploadPath(path string) bool {
	rest, ok := strings.CutPrefix(path, adminPrefix+"/properties")
	if !ok || rest == "" {
		return ok
	}
	id, tail, more := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	return rest[0] == '/' && id != "" && (!more || tail == "photos")
}

// enquiryPath reports whether path is /properties/{slug}/enquiry.
func enquiryPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/properties/")
	slug, tail, _ := strings.Cut(rest, "/")
	return ok && slug != "" && tail == "enquiry"
}
