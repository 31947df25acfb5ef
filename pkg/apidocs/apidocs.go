// Package apidocs embeds the generated OpenAPI v2 document of the control API
// (`make generate` writes it from the protos and control_http.yaml).
package apidocs

import _ "embed"

// ControlOpenAPI is the OpenAPI v2 (Swagger) JSON document of the control API.
//
//go:embed portico/control/v1/control.swagger.json
var ControlOpenAPI []byte
