// Package smfake is an in-process stand-in for AWS Secrets Manager that speaks its JSON
// protocol (awsJson1.1: POST /, X-Amz-Target: secretsmanager.<Operation>) for the
// operations certstore uses: CreateSecret, GetSecretValue, DeleteSecret, and
// PutSecretValue. No Secrets Manager emulator can be installed where Portico is built,
// so the awssm backend is tested through the real aws-sdk-go-v2 client against this.
//
// It checks that every request is SigV4-signed for the secretsmanager service, keeps
// secrets in memory, answers the service's error types (ResourceNotFoundException,
// ResourceExistsException) the way the SDK decodes them, and counts calls per operation.
package smfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake Secrets Manager.
type Server struct {
	URL string

	mu      sync.Mutex
	secrets map[string][]byte
	calls   map[string]int
	// FailNext makes the next n requests answer 500 InternalServiceError.
	failNext int
}

// Start runs a fake until the test ends.
func Start(t testing.TB) *Server {
	s := &Server{secrets: map[string][]byte{}, calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Calls returns how many times op was called.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Names returns the names of the secrets held.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.secrets {
		out = append(out, n)
	}
	return out
}

// FailNext makes the next n requests fail with a server error.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

type request struct {
	Name                       string
	SecretId                   string
	SecretBinary               []byte
	SecretString               *string
	ForceDeleteWithoutRecovery bool
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	if r.Method != http.MethodPost || !ok {
		awsError(w, http.StatusBadRequest, "UnknownOperationException", "not a Secrets Manager call")
		return
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/secretsmanager/aws4_request") {
		awsError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not SigV4-signed for secretsmanager")
		return
	}
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if s.failNext > 0 {
		s.failNext--
		awsError(w, http.StatusInternalServerError, "InternalServiceError", "injected failure")
		return
	}
	arn := func(name string) string {
		return "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + name + "-AbCdEf"
	}
	now := float64(time.Now().Unix())
	switch op {
	case "CreateSecret":
		if _, exists := s.secrets[req.Name]; exists {
			awsError(w, http.StatusBadRequest, "ResourceExistsException", fmt.Sprintf("the secret %s already exists", req.Name))
			return
		}
		s.secrets[req.Name] = value(req)
		answer(w, map[string]any{"ARN": arn(req.Name), "Name": req.Name, "VersionId": "v1"})
	case "PutSecretValue":
		if _, exists := s.secrets[req.SecretId]; !exists {
			awsError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
			return
		}
		s.secrets[req.SecretId] = value(req)
		answer(w, map[string]any{"ARN": arn(req.SecretId), "Name": req.SecretId, "VersionId": "v2"})
	case "GetSecretValue":
		v, exists := s.secrets[req.SecretId]
		if !exists {
			awsError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
			return
		}
		answer(w, map[string]any{"ARN": arn(req.SecretId), "Name": req.SecretId, "SecretBinary": v, "VersionId": "v1", "CreatedDate": now})
	case "DeleteSecret":
		if _, exists := s.secrets[req.SecretId]; !exists {
			awsError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
			return
		}
		delete(s.secrets, req.SecretId)
		answer(w, map[string]any{"ARN": arn(req.SecretId), "Name": req.SecretId, "DeletionDate": now})
	default:
		awsError(w, http.StatusBadRequest, "UnknownOperationException", op+" is not faked")
	}
}

func value(req request) []byte {
	if req.SecretString != nil {
		return []byte(*req.SecretString)
	}
	return req.SecretBinary
}

func answer(w http.ResponseWriter, body any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client sees a short body
}

func awsError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg}) //nolint:errcheck // as above
}
