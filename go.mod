module bus

go 1.26
