module github.com/portico-dev/portico/examples

go 1.26.0
