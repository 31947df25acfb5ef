// Package jsonapi is the control API's JSON face: grpc-gateway routes (from
// proto/portico/control/v1/control_http.yaml) forwarded to the gRPC listener over a
// client connection, so JSON calls pass exactly the interceptors gRPC calls pass
// (authentication, errors, metrics), plus what only HTTP needs:
//
//   - request bodies capped at MaxBodyBytes (413 beyond it, before anything is decoded);
//   - a Retry-After header on 429 and 503 answers that carry a retry hint;
//   - `WWW-Authenticate: Bearer` on 401 answers;
//   - CORS for dashboards on other origins (github.com/rs/cors), off unless origins are
//     configured; preflights are answered here;
//   - the OpenAPI document at /openapi.json.
package jsonapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portico-dev/portico/pkg/apidocs"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
)

// Config shapes the handler.
type Config struct {
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	// CORSOrigins are the origins allowed to call from a browser ("https://dash.example.com",
	// "https://*.example.com", or "*"). Empty: no CORS headers at all.
	CORSOrigins []string
}

// New returns the handler. conn is a client connection to the gRPC API.
func New(ctx context.Context, cfg Config, conn *grpc.ClientConn) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}),
		runtime.WithErrorHandler(errorHandler),
	)
	if err := controlv1.RegisterTenantServiceHandler(ctx, gw, conn); err != nil {
		return nil, err
	}
	if err := controlv1.RegisterDomainServiceHandler(ctx, gw, conn); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", limitBody(cfg.MaxBodyBytes, gw))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(apidocs.ControlOpenAPI) //nolint:errcheck // the client went away
	})
	if len(cfg.CORSOrigins) == 0 {
		return mux, nil
	}
	return cors.New(cors.Options{
		AllowedOrigins: cfg.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
		ExposedHeaders: []string{"Retry-After"},
		MaxAge:         600,
		// Keys travel in the Authorization header, never in cookies.
		AllowCredentials: false,
	}).Handler(mux), nil
}

// limitBody reads at most max bytes of the body before the gateway decodes it, and
// answers 413 beyond that. Buffering is bounded by max, which is small.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			tooLarge(w, max)
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge(w, max)
				return
			}
			http.Error(w, "reading the request body failed", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		next.ServeHTTP(w, r)
	})
}

// tooLarge answers in the gateway's error shape.
func tooLarge(w http.ResponseWriter, max int64) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	fmt.Fprintf(w, `{"code":%d,"message":"request body larger than %d bytes","details":[]}`, codes.InvalidArgument, max)
}

// errorHandler adds Retry-After and WWW-Authenticate, gives the gateway's own parse
// errors a field violation, then answers as grpc-gateway does.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	if st.Code() == codes.InvalidArgument && len(st.Details()) == 0 {
		st = withParseViolation(st)
		err = st.Err()
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
		}
	}
	if st.Code() == codes.Unauthenticated {
		w = &bearerChallenge{ResponseWriter: w}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// bearerChallenge replaces the gateway's WWW-Authenticate (the status message) with a
// proper Bearer challenge (RFC 6750).
type bearerChallenge struct{ http.ResponseWriter }

func (b *bearerChallenge) WriteHeader(code int) {
	b.Header().Set("WWW-Authenticate", `Bearer realm="portico"`)
	b.ResponseWriter.WriteHeader(code)
}

// parseField finds the field in grpc-gateway's and protojson's parse errors:
// `parsing field "status": ...`, `invalid value for string field hostname`,
// `unknown field "x"`, `type mismatch, parameter: hostname`.
var parseField = regexp.MustCompile(`(?:field:? "?|parameter: )([a-z_][a-z0-9_.]*)`)

// withParseViolation turns an INVALID_ARGUMENT without details, which only the gateway
// produces (the service always names the field), into one with a violation of rule
// "malformed" naming the field when the parser said which, and "body" otherwise. A
// dashboard thus handles every 400 the same way.
func withParseViolation(st *status.Status) *status.Status {
	field := "body"
	if m := parseField.FindStringSubmatch(st.Message()); m != nil {
		field = m[1]
	}
	named := status.New(codes.InvalidArgument, "invalid "+field+": "+st.Message())
	withDetails, err := named.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
		Field: field, Reason: "malformed", Description: st.Message(),
	}}})
	if err != nil {
		return st
	}
	return withDetails
}
